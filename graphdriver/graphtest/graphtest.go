// Package graphtest is the conformance suite that every backend of the plugin
// runs. A backend's test hands Run a Factory; Run builds a fresh driver for
// each case on its own home directory and its own CernVM-FS root, and checks
// the driver through the graphdriver.Driver contract only, the way dockerd
// uses it: layer lifecycle, tar import and export with AUFS-style whiteouts,
// change lists, deep chains, reference-counted mounts across a restart, and
// thin images whose layers live in a repository (see thin-image.md).
//
// The suite knows nothing of a backend's on-disk layout. What it sees is what
// dockerd and a container see: the trees that Get returns, the tars and change
// lists the driver reports, and the mounts in /proc/self/mountinfo. Whatever
// whiteout format a backend keeps on disk, those must be the same, so the
// suite has no switch for it.
//
// Expected results follow Docker's built-in overlay2 driver wherever the
// contract leaves room, because dockerd was written against it: Changes
// reports what Docker's naive diff reports (a directory holding a change is
// listed as modified), a Put without a matching Get is harmless, Remove of a
// missing layer succeeds, and Cleanup unmounts everything under home.
//
// Every case needs root: backends mount file systems, and the fixtures set
// owners and make device nodes. Without root the cases skip. Each case
// registers a cleanup that unmounts anything still mounted under its home,
// deepest first, so a failing case never leaks a mount into the next one; a
// case that passed but left a mount behind fails.
//
// The file-tree fixtures (File, Dir, Symlink, ..., WriteTar, Apply,
// CheckTree) are exported so that a backend's own tests can declare layers
// and expected trees the same way.
package graphtest

import (
	"testing"

	"github.com/moby/sys/mountinfo"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/graphdriver"
)

// Factory builds a driver whose home is home and which resolves thin-image
// URLs below cvmfsRoot. It is called once per case, and once more on the same
// home in the restart cases, where the earlier driver is dropped without
// Cleanup as if the plugin had been killed. A Factory that cannot build the
// driver ends the case itself with t.Fatal, or t.Skip when the backend is not
// supported on this machine.
type Factory func(t testing.TB, home, cvmfsRoot string) graphdriver.Driver

// Options adapt the suite to a backend. The zero value suits a backend that
// has no depth limit and needs no mount inspection.
type Options struct {
	// MaxLowerLayers is the largest number of layers the backend stacks below
	// a layer it mounts; overlay2 allows 128, as Docker's does, because the
	// mount options must fit in one page. The suite mounts a layer with
	// exactly that many layers below it, then expects a layer one deeper to be
	// refused, at Create or at Get, with an error that names the limit rather
	// than a bare kernel error. Zero means no limit: the suite mounts a layer
	// with 128 layers below it and checks nothing beyond.
	MaxLowerLayers int

	// InspectMount, when set, is called after each Get the suite makes
	// through its helpers whose directory is a mount point, with that mount's
	// entry from /proc/self/mountinfo. A backend uses it to assert on its own
	// mount options, such as the order of lower directories.
	InspectMount func(t testing.TB, id string, m *mountinfo.Info)
}
