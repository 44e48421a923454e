package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/sirupsen/logrus"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/cvmfs"
)

// Defaults of the settings, used when neither a flag nor an environment
// variable sets them.
const (
	defaultSocket    = "/run/docker/plugins/cvmfs.sock"
	defaultCVMFSRoot = "/cvmfs"
	defaultStateDir  = "/var/lib/cvmfs-graphdriver"
	defaultBackend   = autoBackend
	defaultLogLevel  = "info"
	defaultMount     = mountExternal
	defaultCommit    = commitLocal
	defaultCVMFS2    = cvmfs.DefaultBinary
	defaultCVMFSUser = "cvmfs"
)

// Mount methods: how CernVM-FS repositories come to be mounted.
const (
	// mountExternal: the host mounts them (autofs or by hand) and the
	// plugin only reads below the CernVM-FS root.
	mountExternal = "external"
	// mountInternal: the plugin mounts each repository with cvmfs2 when a
	// layer first needs it.
	mountInternal = "internal"
)

// Commit modes: what becomes of a layer committed on top of a thin image.
const (
	// commitLocal keeps it an ordinary layer in the driver's home.
	commitLocal = "local"
	// commitPublish would publish it into the repository and make the
	// committed image thin again.
	commitPublish = "publish"
)

// mountMethods and commitModes are the values the flags accept.
var (
	mountMethods = []string{mountExternal, mountInternal}
	commitModes  = []string{commitLocal, commitPublish}
)

// logLevels are the values --log-level accepts, from the most verbose.
var logLevels = []string{"debug", "info", "warn", "error"}

// config is what the command line and the environment ask for.
type config struct {
	socket    string
	cvmfsRoot string
	stateDir  string
	backend   string
	logLevel  logrus.Level
	// mountMethod is one of mountMethods, commitMode one of commitModes.
	mountMethod string
	commitMode  string
	// cvmfs2 is the client program the internal mount method runs, and
	// cvmfsUser the user it runs as, as given.
	cvmfs2    string
	cvmfsUser string
	// client is what the internal mount method found of them; zero with
	// the external method.
	client  clientConfig
	version bool
	// holdOnError makes a plugin with a bad setting wait for its stop
	// signal after reporting it, rather than exit.
	holdOnError bool
}

// clientConfig is the CernVM-FS client the internal mount method runs.
type clientConfig struct {
	// binary is the absolute path of cvmfs2.
	binary string
	// uid and gid are the ids of the user the client drops to.
	uid, gid int
}

// parsed returns what of cfg is known before its values are checked, for a
// caller that got an error: whether to hold on error.
func parsed(cfg config) config {
	return config{holdOnError: cfg.holdOnError}
}

// parseConfig reads the settings from args (without the program name) and
// from the environment through getenv. A flag wins over its environment
// variable, which wins over the default; the environment variables let a
// managed plugin's config.json set what a legacy plugin passes as flags.
//
// For --help it prints the usage to out and returns flag.ErrHelp.
func parseConfig(args []string, getenv func(string) string, out io.Writer) (config, error) {
	fromEnv := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}

	var cfg config
	var logLevel string

	fs := flag.NewFlagSet(programName, flag.ContinueOnError)
	// Errors are returned and help is printed below, not by the flag set.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}

	fs.StringVar(&cfg.socket, "socket", fromEnv("SOCKET", defaultSocket),
		"unix socket to listen on; dockerd -s NAME dials /run/docker/plugins/NAME.sock (env SOCKET)")
	fs.StringVar(&cfg.cvmfsRoot, "cvmfs-root", fromEnv("CVMFS_ROOT", defaultCVMFSRoot),
		"directory where CernVM-FS repositories are mounted (env CVMFS_ROOT)")
	fs.StringVar(&cfg.stateDir, "state-dir", fromEnv("STATE_DIR", defaultStateDir),
		"directory that keeps dockerd's Init, to serve calls after a restart (env STATE_DIR)")
	fs.StringVar(&cfg.backend, "backend", fromEnv("BACKEND", defaultBackend),
		"storage backend: "+strings.Join(validBackends(), ", ")+
			"; auto keeps the one that made the home, else asks the kernel (env BACKEND)")
	fs.StringVar(&cfg.mountMethod, "mount-method", fromEnv("MOUNT_METHOD", defaultMount),
		"how repositories get mounted: external (by the host) or internal (by the plugin with cvmfs2) (env MOUNT_METHOD)")
	fs.StringVar(&cfg.cvmfs2, "cvmfs2", fromEnv("CVMFS2_BINARY", defaultCVMFS2),
		"the CernVM-FS client the internal mount method runs, looked up in PATH unless it holds a slash (env CVMFS2_BINARY)")
	fs.StringVar(&cfg.cvmfsUser, "cvmfs-user", fromEnv("CVMFS_USER", defaultCVMFSUser),
		"the user the CernVM-FS client of the internal mount method runs as, from /etc/passwd (env CVMFS_USER)")
	fs.StringVar(&cfg.commitMode, "commit-mode", fromEnv("COMMIT_MODE", defaultCommit),
		"what a commit on a thin image makes: local (an ordinary layer) or publish (env COMMIT_MODE)")
	fs.StringVar(&logLevel, "log-level", fromEnv("LOG_LEVEL", defaultLogLevel),
		"least severe level logged: "+strings.Join(logLevels, ", ")+" (env LOG_LEVEL)")
	fs.BoolVar(&cfg.version, "version", false, "print the version and exit")
	fs.BoolVar(&cfg.holdOnError, "hold-on-error", false,
		"after a bad setting, keep running until stopped instead of exiting (a managed plugin: dockerd restarts one that exits)")

	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return config{}, errors.Join(printUsage(fs, out), err)
	}
	if err != nil {
		return parsed(cfg), fmt.Errorf("%w (see --help)", err)
	}
	if fs.NArg() > 0 {
		return parsed(cfg), fmt.Errorf("unexpected argument %q: %s takes only flags", fs.Arg(0), programName)
	}
	if cfg.version {
		return cfg, nil
	}

	if !slices.Contains(logLevels, logLevel) {
		return parsed(cfg), fmt.Errorf("unknown log level %q: valid levels are %s",
			logLevel, strings.Join(logLevels, ", "))
	}
	level, err := logrus.ParseLevel(logLevel)
	if err != nil {
		return parsed(cfg), fmt.Errorf("failed to parse log level %q: %w", logLevel, err)
	}
	cfg.logLevel = level

	if err := checkBackendName(cfg.backend); err != nil {
		return parsed(cfg), err
	}
	if err := checkMountMethod(cfg.mountMethod); err != nil {
		return parsed(cfg), err
	}
	if cfg.mountMethod == mountInternal {
		client, err := findClient(cfg.cvmfs2, cfg.cvmfsUser, getenv("PATH"))
		if err != nil {
			return parsed(cfg), err
		}
		cfg.client = client
	}
	if err := checkCommitMode(cfg.commitMode); err != nil {
		return parsed(cfg), err
	}
	return cfg, nil
}

// metavars name the value each flag takes, in the help text.
var metavars = map[string]string{
	"socket":       "PATH",
	"cvmfs-root":   "DIR",
	"state-dir":    "DIR",
	"backend":      "NAME",
	"log-level":    "LEVEL",
	"mount-method": "METHOD",
	"cvmfs2":       "PROGRAM",
	"cvmfs-user":   "USER",
	"commit-mode":  "MODE",
}

// printUsage writes the help text: one line per flag, with its value and
// its default.
func printUsage(fs *flag.FlagSet, out io.Writer) error {
	tw := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "Usage: %s [flags]\n\n", programName)
	fmt.Fprintf(tw, "Serves a Docker graphdriver plugin that also runs thin images from CernVM-FS.\n")
	fmt.Fprintf(tw, "A flag wins over its environment variable.\n\nFlags:\n")

	fs.VisitAll(func(f *flag.Flag) {
		name, usage := "--"+f.Name, f.Usage
		if metavar, ok := metavars[f.Name]; ok {
			name += " " + metavar
			usage += fmt.Sprintf(" [default %s]", f.DefValue)
		}
		fmt.Fprintf(tw, "  %s\t%s\n", name, usage)
	})
	fmt.Fprintf(tw, "  --help\tprint this help and exit\n")
	return tw.Flush()
}

// checkMountMethod refuses a mount method that is unknown.
func checkMountMethod(method string) error {
	if !slices.Contains(mountMethods, method) {
		return fmt.Errorf("unknown mount method %q: valid methods are %s", method, strings.Join(mountMethods, ", "))
	}
	return nil
}

// checkCommitMode refuses a commit mode that is unknown or not implemented.
func checkCommitMode(mode string) error {
	switch mode {
	case commitLocal:
		return nil
	case commitPublish:
		return fmt.Errorf("commit mode %q is not implemented: layers committed on thin images can only be "+
			"kept as ordinary local layers; use %q", mode, commitLocal)
	default:
		return fmt.Errorf("unknown commit mode %q: valid modes are %s", mode, strings.Join(commitModes, ", "))
	}
}
