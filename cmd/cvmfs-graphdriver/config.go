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
)

// Defaults of the settings, used when neither a flag nor an environment
// variable sets them.
const (
	defaultSocket    = "/run/docker/plugins/cvmfs.sock"
	defaultCVMFSRoot = "/cvmfs"
	defaultStateDir  = "/var/lib/cvmfs-graphdriver"
	defaultBackend   = "overlay2"
	defaultLogLevel  = "info"
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
	version   bool
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
		"storage backend: "+strings.Join(backendNames(), ", ")+" (env BACKEND)")
	fs.StringVar(&logLevel, "log-level", fromEnv("LOG_LEVEL", defaultLogLevel),
		"least severe level logged: "+strings.Join(logLevels, ", ")+" (env LOG_LEVEL)")
	fs.BoolVar(&cfg.version, "version", false, "print the version and exit")

	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return config{}, errors.Join(printUsage(fs, out), err)
	}
	if err != nil {
		return config{}, fmt.Errorf("%w (see --help)", err)
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q: %s takes only flags", fs.Arg(0), programName)
	}
	if cfg.version {
		return cfg, nil
	}

	if !slices.Contains(logLevels, logLevel) {
		return config{}, fmt.Errorf("unknown log level %q: valid levels are %s",
			logLevel, strings.Join(logLevels, ", "))
	}
	level, err := logrus.ParseLevel(logLevel)
	if err != nil {
		return config{}, fmt.Errorf("failed to parse log level %q: %w", logLevel, err)
	}
	cfg.logLevel = level

	if _, err := lookupBackend(cfg.backend); err != nil {
		return config{}, err
	}
	return cfg, nil
}

// metavars name the value each flag takes, in the help text.
var metavars = map[string]string{
	"socket":     "PATH",
	"cvmfs-root": "DIR",
	"state-dir":  "DIR",
	"backend":    "NAME",
	"log-level":  "LEVEL",
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
