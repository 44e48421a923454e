package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// usageError is a wrong command line; it exits with exitUsage.
type usageError struct {
	command string // "make-thin ", or "" for the root command
	err     error
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// newUsageError wraps err as a usage error of cmd.
func newUsageError(cmd *cobra.Command, err error) error {
	name := strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name())
	name = strings.TrimSpace(name)
	if name != "" {
		name += " "
	}
	return &usageError{command: name, err: err}
}

// usagef returns a usage error of cmd.
func usagef(cmd *cobra.Command, format string, args ...any) error {
	return newUsageError(cmd, fmt.Errorf(format, args...))
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "docker2cvmfs COMMAND",
		Short: "Make thin images whose layers live in a CernVM-FS repository",
		Long: `docker2cvmfs turns a regular container image into a thin image: it unpacks
each layer of the image into a CernVM-FS repository and writes an image whose
only layer holds thin.json, the list of those layers. The cvmfs-graphdriver
plugin runs such images, fetching files from CernVM-FS as containers read them.

Images are named with a transport prefix (the daemon is the default):
  NAME[:TAG]                         an image of the Docker daemon (DOCKER_HOST)
  docker-daemon:NAME[:TAG]           the same
  docker://HOST/NAME[:TAG|@DIGEST]   an image in a registry (docker login credentials)
  docker-archive:PATH[:NAME[:TAG]]   an archive written by docker save
  oci:PATH[:TAG]                     an OCI image layout`,
		Version:       version,
		Args:          cobra.ArbitraryArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		// Without a subcommand, show the help and fail: a bare
		// "docker2cvmfs" does nothing useful.
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef(cmd, "unknown command %q", args[0])
			}
			return usagef(cmd, "a command is needed: make-thin, thin, check or gc")
		},
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return newUsageError(cmd, err) })
	root.AddCommand(newMakeThinCommand(), newThinCommand(), newCheckCommand(), newGCCommand())
	root.CompletionOptions.DisableDefaultCmd = true
	for _, c := range root.Commands() {
		c.DisableFlagsInUseLine = true
	}
	return root
}

// noArgs refuses positional arguments with a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef(cmd, "%q takes no arguments, got %q", cmd.CommandPath(), strings.Join(args, " "))
	}
	return nil
}

// requireFlags fails with a usage error naming the first of names that was
// not given.
func requireFlags(cmd *cobra.Command, names ...string) error {
	for _, n := range names {
		f := cmd.Flags().Lookup(n)
		if f == nil || !f.Changed || f.Value.String() == "" {
			return usagef(cmd, "flag --%s%s is required", n, shorthand(f))
		}
	}
	return nil
}

func shorthand(f *pflag.Flag) string {
	if f == nil || f.Shorthand == "" {
		return ""
	}
	return " (-" + f.Shorthand + ")"
}
