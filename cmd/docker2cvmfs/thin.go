package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/thinbuild"
)

func newThinCommand() *cobra.Command {
	var o conversionOptions
	cmd := &cobra.Command{
		Use:   "thin -i IMAGE -r REPOSITORY [OPTIONS]",
		Short: "Print the descriptor make-thin would write, without unpacking",
		Long: `Print the thin.json that 'make-thin' would write for IMAGE with the same
flags, without unpacking a layer or writing anything. --output-reference and
--release-manager are accepted, so that a make-thin command line can be
checked as it is, and have no effect.`,
		Example: `  docker2cvmfs thin -i busybox:latest -r unpacked.cern.ch`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "input-reference", "repository"); err != nil {
				return err
			}
			return printThin(cmd.Context(), cmd, &o)
		},
	}
	o.addFlags(cmd)
	return cmd
}

func printThin(ctx context.Context, cmd *cobra.Command, o *conversionOptions) error {
	repo, err := o.repo()
	if err != nil {
		return newUsageError(cmd, err)
	}
	img, err := openInput(ctx, o.input, nil)
	if err != nil {
		return err
	}
	defer img.Close()

	_, thinJSON, err := thinbuild.Descriptor(img, repo, o.publisher(repo).WhiteoutFormat())
	if err != nil {
		return err
	}
	_, err = fmt.Fprint(cmd.OutOrStdout(), string(thinJSON))
	return err
}
