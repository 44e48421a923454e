// Command docker2cvmfs makes thin images: it unpacks the layers of a
// regular image into a CernVM-FS repository and writes an image whose only
// layer lists them, which the cvmfs-graphdriver plugin runs. docs/docker2cvmfs.md
// describes it in full.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the command failed, or check found problems
	exitUsage   = 2 // the command line was wrong
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// run runs the command line args and returns the exit code. An interrupt
// cancels the work, whose deferred cleanups then run: no partial layer is
// left and an open transaction is aborted.
func run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cmd := newRootCommand()
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}

	fmt.Fprintf(os.Stderr, "docker2cvmfs: %v\n", err)
	var usage *usageError
	switch {
	case errors.As(err, &usage):
		fmt.Fprintf(os.Stderr, "See 'docker2cvmfs %s--help'.\n", usage.command)
		return exitUsage
	default:
		return exitFailure
	}
}
