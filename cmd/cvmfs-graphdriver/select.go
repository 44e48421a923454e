package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/graphdriver"
)

// autoBackend is the --backend value that lets the plugin pick the backend
// from what the kernel supports and what the home already holds.
const autoBackend = "auto"

// backendRecordName is the file in the driver's home that names the
// backend that laid the home out. Layers of one backend are meaningless to
// another (overlay2 keeps lower lists and short links, aufs keeps branch
// lists), so a home is only ever served by the backend that made it.
const backendRecordName = ".backend"

// autoOrder is the order in which auto tries the backends: overlay2 is in
// every kernel Docker supports today, aufs only in patched ones.
var autoOrder = []string{"overlay2", "aufs"}

// backendFilesystems name the kernel file system each backend mounts.
var backendFilesystems = map[string]string{
	"overlay2": "overlay",
	"aufs":     "aufs",
}

// legacyLayouts recognise homes laid out before the record existed: a
// directory each backend always creates at Init.
var legacyLayouts = map[string]string{
	"overlay2": "l",
}

// kernelFS is what the selection needs to know about the kernel.
type kernelFS interface {
	// Supports reports whether the kernel serves the file system named fs,
	// loading its module first if needed and possible.
	Supports(fs string) bool
}

// validBackends lists the values --backend accepts.
func validBackends() []string {
	return append([]string{autoBackend}, backendNames()...)
}

// checkBackendName refuses a --backend value that names no backend.
func checkBackendName(name string) error {
	if name == autoBackend {
		return nil
	}
	if _, ok := backends[name]; !ok {
		return fmt.Errorf("unknown backend %q: valid backends are %s",
			name, strings.Join(validBackends(), ", "))
	}
	return nil
}

// selector builds the backend that serves a home. It is asked on every
// Init and every rebuild after a restart, so the choice always follows the
// home's record rather than a value kept in memory.
type selector struct {
	requested string
	// backends are the backends to choose from, by name.
	backends map[string]newBackend
	kernel   kernelFS
	log      *logrus.Entry
	// repositories returns new, empty reference counts of the
	// repositories the driver mounts with the internal mount method; nil
	// with the external one. Each driver gets its own: a driver built
	// after a restart counts again the layers still mounted.
	repositories func() repositories
}

// newDriver picks the backend for opts.Home, builds it and records its name
// in the home. It refuses a home recorded for another backend than the one
// requested; with auto, the recorded backend wins over the kernel's
// preference, so that an upgraded kernel never hides existing layers.
func (s *selector) newDriver(opts graphdriver.InitOptions, cvmfsRoot string) (graphdriver.Driver, error) {
	recorded, inFile, err := readBackendRecord(opts.Home)
	if err != nil {
		return nil, err
	}

	name, reason, err := s.choose(opts.Home, recorded)
	if err != nil {
		return nil, err
	}
	var repos repositories
	if s.repositories != nil {
		repos = s.repositories()
	}
	d, err := s.backends[name](opts, cvmfsRoot, repos)
	if err != nil {
		return nil, err
	}

	if !inFile {
		if err := writeBackendRecord(opts.Home, name); err != nil {
			return nil, errors.Join(err, d.Cleanup())
		}
	}
	s.log.WithFields(logrus.Fields{"home": opts.Home, "backend": name, "reason": reason}).
		Info("backend selected")
	return d, nil
}

// choose returns the backend for a home whose record says recorded (empty
// for none), and why it was chosen.
func (s *selector) choose(home, recorded string) (name, reason string, _ error) {
	if recorded != "" {
		if _, ok := s.backends[recorded]; !ok {
			return "", "", fmt.Errorf("home %s was laid out by the %s backend, which this build of %s lacks",
				home, recorded, programName)
		}
	}

	switch {
	case s.requested != autoBackend && recorded != "" && recorded != s.requested:
		return "", "", fmt.Errorf("home %s holds layers of the %s backend and this plugin is set to %s: "+
			"set BACKEND=%s (or auto), or give dockerd a home the %s backend made",
			home, recorded, s.requested, recorded, s.requested)
	case s.requested != autoBackend:
		if _, ok := s.backends[s.requested]; !ok {
			return "", "", fmt.Errorf("unknown backend %q", s.requested)
		}
		s.loadFilesystem(s.requested)
		return s.requested, "requested", nil
	case recorded != "":
		s.loadFilesystem(recorded)
		return recorded, "recorded in home", nil
	}

	var tried []string
	for _, name := range autoOrder {
		if _, ok := s.backends[name]; !ok {
			continue
		}
		fsName := backendFilesystems[name]
		if s.kernel.Supports(fsName) {
			return name, "kernel supports " + fsName, nil
		}
		tried = append(tried, fmt.Sprintf("%s (for %s)", fsName, name))
	}
	return "", "", fmt.Errorf("no backend can run here: the kernel supports none of %s, even after trying to load them",
		strings.Join(tried, ", "))
}

// loadFilesystem makes the kernel load the file system a backend needs
// before the backend checks for it: the plugin's root file system has no
// modprobe, and the backend would otherwise refuse a kernel that has the
// module but has not loaded it yet. A failure is left for the backend to
// report in its own words.
func (s *selector) loadFilesystem(backend string) {
	if fsName, ok := backendFilesystems[backend]; ok {
		s.kernel.Supports(fsName)
	}
}

// readBackendRecord returns the backend named in home's record, or the one
// a layout from before the record shows, or "" for a home no backend has
// used. inFile says whether the name came from the record.
func readBackendRecord(home string) (name string, inFile bool, _ error) {
	p := filepath.Join(home, backendRecordName)
	data, err := os.ReadFile(p)
	if err == nil {
		name := strings.TrimSpace(string(data))
		if name == "" || strings.ContainsAny(name, " \t\n/") {
			return "", false, fmt.Errorf("backend record %s is malformed (%q): it must hold one backend name", p, data)
		}
		return name, true, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, fmt.Errorf("failed to read backend record: %w", err)
	}

	names := make([]string, 0, len(legacyLayouts))
	for name := range legacyLayouts {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if fi, err := os.Stat(filepath.Join(home, legacyLayouts[name])); err == nil && fi.IsDir() {
			return name, false, nil
		}
	}
	return "", false, nil
}

// writeBackendRecord records name in home, atomically.
func writeBackendRecord(home, name string) (retErr error) {
	tmp, err := os.CreateTemp(home, backendRecordName+".tmp-*")
	if err != nil {
		return fmt.Errorf("failed to record the backend in %s: %w", home, err)
	}
	defer func() {
		if retErr != nil {
			os.Remove(tmp.Name())
		}
	}()

	_, werr := tmp.WriteString(name + "\n")
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp.Name(), 0o644)
	}
	if werr != nil {
		return fmt.Errorf("failed to record the backend in %s: %w", home, werr)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(home, backendRecordName)); err != nil {
		return fmt.Errorf("failed to record the backend in %s: %w", home, err)
	}
	return nil
}
