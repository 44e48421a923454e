// Command cvmfs2 stands in for the CernVM-FS client in tests. It takes the
// command line the client takes when it mounts a repository,
//
//	cvmfs2 -o OPTIONS REPOSITORY MOUNTPOINT
//
// and bind-mounts the directory $CVMFS_STANDIN_SOURCE/REPOSITORY on
// MOUNTPOINT, read-only, as the client mounts the repository there. Each
// call is appended to $CVMFS_STANDIN_LOG, when set, as one line holding
// the repository, the mount point and the options. A repository that has
// no directory in the source fails the way the real client fails to load
// one, with a message naming it on standard error and exit status 1.
//
// As the client reads its parameters from /etc/cvmfs/default.conf and
// /etc/cvmfs/default.local, so does the stand-in read the two above, as
// NAME=VALUE lines, where the environment does not set them: a stand-in
// staged into a managed plugin, whose environment the tests cannot add
// to, is configured the way the client would be.
//
// Unlike the client it leaves no process behind: a plain umount of the
// mount point undoes it.
package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "cvmfs2: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) != 4 || args[0] != "-o" {
		return fmt.Errorf("usage: cvmfs2 -o OPTIONS REPOSITORY MOUNTPOINT (got %q)", args)
	}
	opts, repo, target := args[1], args[2], args[3]

	params, err := readParameters(configFiles)
	if err != nil {
		return err
	}
	source := params.get(sourceEnv)
	if source == "" {
		return fmt.Errorf("%s is not set, in the environment or in %s", sourceEnv, strings.Join(configFiles, " or "))
	}
	if log := params.get(logEnv); log != "" {
		if err := appendLine(log, strings.Join([]string{repo, target, opts}, " ")); err != nil {
			return err
		}
	}

	dir := filepath.Join(source, repo)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("Failed to initialize root file catalog of %s (16 - file catalog failure): "+
			"no directory %s", repo, dir)
	}
	if err := unix.Mount(dir, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("failed to mount %s on %s: %w", dir, target, err)
	}
	if err := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
		if uerr := unix.Unmount(target, 0); uerr != nil {
			err = fmt.Errorf("%w (and the bind mount could not be undone: %v)", err, uerr)
		}
		return fmt.Errorf("failed to make %s read-only: %w", target, err)
	}
	return nil
}

// The names of the environment variables, as package cvmfstest sets them.
const (
	sourceEnv = "CVMFS_STANDIN_SOURCE"
	logEnv    = "CVMFS_STANDIN_LOG"
)

// configFiles are the client's parameter files, the later one winning.
var configFiles = []string{"/etc/cvmfs/default.conf", "/etc/cvmfs/default.local"}

// parameters are the settings of the configuration files; the environment
// wins over them.
type parameters map[string]string

func (p parameters) get(name string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return p[name]
}

// readParameters reads NAME=VALUE lines from those of files that exist.
// Comments, blank lines, "export " and quotes around the value are
// allowed, as in the client's files; nothing is expanded.
func readParameters(files []string) (parameters, error) {
	p := parameters{}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(string(data), "\n") {
			line = strings.TrimPrefix(strings.TrimSpace(line), "export ")
			name, value, ok := strings.Cut(line, "=")
			if !ok || strings.HasPrefix(name, "#") {
				continue
			}
			p[strings.TrimSpace(name)] = strings.Trim(strings.TrimSpace(value), `"'`)
		}
	}
	return p, nil
}

func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(f, line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
