package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/test/dockertest"
)

// repo is the CernVM-FS repository the thin images' layers are published to.
const repo = "e2e.cern.ch"

// Image names the tests use.
const (
	baseRef = "e2e/base"
	thinRef = "e2e/thin"
)

// thinLayers are the real layers of the test thin image, base first. Across
// them they hold files, relative and absolute symlinks, a file with other
// permission bits, a modified file, a deleted file, a deleted directory and
// an opaque directory, so that a listing of a container shows whether each
// layer is stacked in the right place and each whiteout honoured.
func thinLayers() []dockertest.Layer {
	base := append(dockertest.BusyboxLayer(),
		dockertest.File("etc/os-release", "NAME=e2e\n"),
		dockertest.File("data/a.txt", "a from the base layer\n"),
		dockertest.File("data/b.txt", "b from the base layer\n"),
		dockertest.File("data/keep/x.txt", "x from the base layer\n"),
		dockertest.File("data/run.sh", "#!/bin/sh\necho run\n").WithMode(0o755),
		dockertest.File("opq/old.txt", "hidden by layer 1\n"),
		dockertest.File("opq/deep/old.txt", "hidden by layer 1\n"),
	)
	layer1 := dockertest.Layer{
		dockertest.File("data/a.txt", "a from layer 1\n"),
		dockertest.Whiteout("data/b.txt"),
		dockertest.Opaque("opq"),
		dockertest.File("opq/new.txt", "new in layer 1\n"),
		dockertest.Symlink("data/link-a", "a.txt"),
		dockertest.Symlink("data/link-os", "/etc/os-release"),
		dockertest.Dir("data/private").WithMode(0o750),
	}
	layer2 := dockertest.Layer{
		dockertest.File("data/c.txt", "c from layer 2\n"),
		dockertest.File("data/empty", ""),
		dockertest.Whiteout("data/keep"),
		dockertest.File("data/private/p.txt", "p from layer 2\n").WithMode(0o600),
	}
	return []dockertest.Layer{base, layer1, layer2}
}

// publishThin writes the layers into the CernVM-FS root in overlay format
// and returns the descriptor that lists them.
func publishThin(t *testing.T, cvmfsRoot string, layers []dockertest.Layer) dockertest.Descriptor {
	t.Helper()
	return publishThinAs(t, cvmfsRoot, layers, dockertest.OverlayFormat)
}

// publishThinAs writes the layers into the CernVM-FS root with whiteouts in
// the given format and returns the descriptor that lists them.
func publishThinAs(t *testing.T, cvmfsRoot string, layers []dockertest.Layer,
	format dockertest.WhiteoutFormat) dockertest.Descriptor {
	t.Helper()

	var entries []dockertest.ThinLayer
	for _, l := range layers {
		tl, err := dockertest.PublishLayer(cvmfsRoot, repo, l, format)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, tl)
	}
	return dockertest.NewDescriptor(entries...)
}

// importThin imports a thin image whose thin.json holds content and checks
// that the image's only layer is the tar that was imported.
func importThin(t *testing.T, d *dockertest.Daemon, content []byte, ref string) {
	t.Helper()

	tarPath := filepath.Join(t.TempDir(), "thin.tar")
	if err := dockertest.WriteThinTar(tarPath, content); err != nil {
		t.Fatal(err)
	}
	d.Import(t, tarPath, ref)

	want, err := dockertest.FileDigest(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.TrimSpace(d.MustDocker(t, "image", "inspect", "--format", "{{json .RootFS.Layers}}", ref))
	if got != `["`+want+`"]` {
		t.Fatalf("thin image %s has layers %s, want the imported tar alone, [%q]", ref, got, want)
	}
}

// importBase imports the busybox image that regular runs use.
func importBase(t *testing.T, d *dockertest.Daemon) {
	t.Helper()

	tarPath := filepath.Join(t.TempDir(), "base.tar")
	if err := dockertest.BusyboxLayer().WriteTarFile(tarPath); err != nil {
		t.Fatal(err)
	}
	d.Import(t, tarPath, baseRef)
}

// expectListing returns the listing of a root file system made of layers.
func expectListing(t *testing.T, layers ...dockertest.Layer) []string {
	t.Helper()

	lines, err := dockertest.ExpectedListing(dockertest.Merge(layers...))
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

// checkListing compares the listing of a new container of image with want.
func checkListing(t *testing.T, d *dockertest.Daemon, image string, want []string) {
	t.Helper()

	got := d.Listing(t, image, want)
	if diff := dockertest.DiffLines(want, got); diff != "" {
		t.Errorf("files in a container of %s differ from the layers (-want +got):\n%s", image, diff)
	}
}

// newCVMFSRoot returns an empty directory that stands in for /cvmfs.
func newCVMFSRoot(t *testing.T) string {
	t.Helper()

	root := filepath.Join(t.TempDir(), "cvmfs")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	return root
}

// startWithPlugin starts a daemon that runs a new instance of the plugin
// under test, serving layers from cvmfsRoot.
func startWithPlugin(t *testing.T, cvmfsRoot string) *dockertest.Daemon {
	t.Helper()

	dockertest.Require(t)
	return dockertest.Start(t, dockertest.Config{Plugin: pluginBinary(t), CVMFSRoot: cvmfsRoot})
}
