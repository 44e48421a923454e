// Command cvmfs-graphdriver serves a Docker graphdriver plugin whose
// backends also run thin images from CernVM-FS.
//
// It listens on a unix socket for dockerd's graphdriver protocol. As a
// legacy plugin it is started before dockerd, which finds it with
// `dockerd --experimental -s NAME` at /run/docker/plugins/NAME.sock; as a
// managed plugin dockerd starts it and the settings come from environment
// variables in the plugin's config.json. Run it with --help for the
// settings.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/docker/go-plugins-helpers/sdk"
	"github.com/sirupsen/logrus"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/graphdriver"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/cvmfs"
)

const programName = "cvmfs-graphdriver"

// version is stamped at build time with
// -ldflags "-X main.version=VERSION".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs the plugin until ctx is done and returns the exit status: 0
// after a clean stop, 1 if serving failed, 2 for a bad command line.
func run(ctx context.Context, args []string, getenv func(string) string,
	stdout, stderr io.Writer,
) int {
	cfg, err := parseConfig(args, getenv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", programName, err)
		if cfg.holdOnError {
			// dockerd restarts a managed plugin that exits while it is
			// being enabled, and dockerd 20.10 then keeps a stale task
			// that blocks every later enable until dockerd restarts.
			// Waiting for the stop signal that ends the failed enable
			// reports the error once and leaves dockerd clean.
			<-ctx.Done()
		}
		return 2
	}
	if cfg.version {
		fmt.Fprintf(stdout, "%s %s\n", programName, version)
		return 0
	}

	log := newLogger(cfg.logLevel, stdout, stderr)
	if err := serve(ctx, cfg, logrus.NewEntry(log)); err != nil {
		log.WithError(err).Error("cvmfs-graphdriver stopped on an error")
		return 1
	}
	return 0
}

// serve listens on the configured socket and answers dockerd until ctx is
// done, then removes the socket.
func serve(ctx context.Context, cfg config, log *logrus.Entry) error {
	sel := &selector{requested: cfg.backend, backends: backends, kernel: hostKernel{}, log: log}
	if cfg.mountMethod == mountInternal {
		client := &cvmfs.Client{Root: cfg.cvmfsRoot, Binary: cfg.client.binary, UID: cfg.client.uid, GID: cfg.client.gid}
		sel.repositories = func() repositories { return cvmfs.NewRepositories(client) }
	}
	handler, err := graphdriver.NewHandler(graphdriver.Config{
		Init: func(opts graphdriver.InitOptions) (graphdriver.Driver, error) {
			return sel.newDriver(opts, cfg.cvmfsRoot)
		},
		StateDir: cfg.stateDir,
		Log:      log,
	})
	if err != nil {
		return err
	}
	plugin := sdk.NewHandler(graphdriver.Manifest)
	handler.Register(plugin)

	sock, err := listenSocket(cfg.socket)
	if err != nil {
		return err
	}
	checkCVMFSRoot(cfg.cvmfsRoot, log)

	fields := logrus.Fields{
		"version":      version,
		"socket":       cfg.socket,
		"backend":      cfg.backend,
		"cvmfs-root":   cfg.cvmfsRoot,
		"state-dir":    cfg.stateDir,
		"mount-method": cfg.mountMethod,
		"commit-mode":  cfg.commitMode,
	}
	if cfg.mountMethod == mountInternal {
		fields["cvmfs2"] = cfg.client.binary
		fields["cvmfs-user"] = cfg.cvmfsUser
	}
	log.WithFields(fields).Info("cvmfs-graphdriver serving")

	served := make(chan error, 1)
	go func() { served <- plugin.Serve(sock.listener) }()

	select {
	case <-ctx.Done():
		// Calls in flight are cut off: dockerd stops a plugin only once it
		// no longer uses it, and a legacy plugin is stopped by hand.
		if err := sock.Close(); err != nil {
			return fmt.Errorf("failed to close socket %s: %w", cfg.socket, err)
		}
		log.Info("cvmfs-graphdriver stopped")
		return nil
	case err := <-served:
		return errors.Join(fmt.Errorf("failed to serve on %s: %w", cfg.socket, err), sock.Close())
	}
}

// checkCVMFSRoot warns when the CernVM-FS root is missing. Regular images
// do not need it, so the plugin serves them anyway; thin images fail until
// it appears.
func checkCVMFSRoot(dir string, log *logrus.Entry) {
	fi, err := os.Stat(dir)
	if err == nil && fi.IsDir() {
		return
	}
	if err == nil {
		err = errors.New("not a directory")
	}
	log.WithField("cvmfs-root", dir).WithError(err).Warn("CernVM-FS root is not a usable directory: " +
		"thin images will fail until it exists, regular images work")
}
