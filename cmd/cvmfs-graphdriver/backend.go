package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/aufs"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/graphdriver"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/overlay2"
)

// newBackend builds a backend driver from dockerd's Init, the directory
// where CernVM-FS repositories are mounted, and the repositories to mount
// them through with the internal mount method (nil with the external
// one).
type newBackend func(opts graphdriver.InitOptions, cvmfsRoot string, repos repositories) (graphdriver.Driver, error)

// repositories mounts repositories on demand for the internal mount
// method; both backends take one, and *cvmfs.Repositories is one.
type repositories interface {
	AcquireAll(repos []string) error
	ReleaseAll(repos []string) error
}

// backends are the storage backends by the name --backend takes.
var backends = map[string]newBackend{
	"overlay2": newOverlay2,
	"aufs":     newAufs,
}

// newOverlay2 builds the overlay2 backend. It returns an untyped nil on
// failure: a nil *overlay2.Driver in a Driver interface would not be nil.
func newOverlay2(opts graphdriver.InitOptions, cvmfsRoot string, repos repositories) (graphdriver.Driver, error) {
	var options []overlay2.Option
	if repos != nil {
		options = append(options, overlay2.WithRepositories(repos))
	}
	d, err := overlay2.New(opts, cvmfsRoot, options...)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// newAufs builds the aufs backend. On a kernel without aufs it fails with
// one sentence that says so and points to overlay2.
func newAufs(opts graphdriver.InitOptions, cvmfsRoot string, repos repositories) (graphdriver.Driver, error) {
	var options []aufs.Option
	if repos != nil {
		options = append(options, aufs.WithRepositories(repos))
	}
	d, err := aufs.New(opts, cvmfsRoot, options...)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// backendNames lists the valid --backend values, sorted.
func backendNames() []string {
	names := make([]string, 0, len(backends))
	for name := range backends {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// lookupBackend returns the constructor of the named backend.
func lookupBackend(name string) (newBackend, error) {
	b, ok := backends[name]
	if !ok {
		return nil, fmt.Errorf("unknown backend %q: valid backends are %s",
			name, strings.Join(backendNames(), ", "))
	}
	return b, nil
}
