package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/repository"
)

type gcOptions struct {
	repoOptions
	delete bool
}

func newGCCommand() *cobra.Command {
	var o gcOptions
	cmd := &cobra.Command{
		Use:   "gc -r REPOSITORY [OPTIONS]",
		Short: "List, or with --delete remove, layers no recorded descriptor uses",
		Long: `List the layer directories of a local repository that no descriptor recorded
in it (below .thin/descriptors) refers to, and the leftovers of interrupted
runs. Nothing is removed unless --delete is given. Forget a thin image by
removing its record first.

gc --delete takes the repository's lock, so it waits for a running make-thin
to finish and never removes a layer that was just unpacked.`,
		Example: `  docker2cvmfs gc -r unpacked.cern.ch --cvmfs-root /srv/cvmfs
  docker2cvmfs gc -r unpacked.cern.ch --cvmfs-root /srv/cvmfs --delete`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "repository"); err != nil {
				return err
			}
			repo, err := o.repo()
			if err != nil {
				return newUsageError(cmd, err)
			}
			return gc(cmd, repo, o.delete)
		},
	}
	o.repoOptions.addFlags(cmd)
	cmd.Flags().BoolVar(&o.delete, "delete", false, "remove what is listed (the default is a dry run)")
	return cmd
}

func gc(cmd *cobra.Command, repo repository.Repo, del bool) error {
	var (
		g   repository.Garbage
		err error
	)
	if del {
		g, err = repo.RemoveGarbage()
	} else {
		g, err = repo.FindGarbage()
	}
	if err != nil {
		return err
	}

	w := cmd.OutOrStdout()
	verb := "Would remove"
	if del {
		verb = "Removed"
	}
	fmt.Fprintf(w, "%d descriptor records, %d layers in use in %s\n", g.Records, g.InUse, repo.LayersDir())
	for _, p := range g.Unused {
		fmt.Fprintf(w, "%s unused layer %s\n", verb, p)
	}
	for _, p := range g.Partial {
		fmt.Fprintf(w, "%s partial layer %s\n", verb, p)
	}
	n := len(g.Unused) + len(g.Partial)
	switch {
	case n == 0:
		fmt.Fprintln(w, "Nothing to remove")
	case !del:
		fmt.Fprintf(w, "Dry run: %d directories would be removed; run again with --delete to remove them\n", n)
	default:
		fmt.Fprintf(w, "%d directories removed\n", n)
	}
	return nil
}
