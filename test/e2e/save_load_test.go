package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/test/dockertest"
)

// maxThinArchive bounds the size of `docker save` of a thin image: its layer
// is a small descriptor, whatever the size of the real layers.
const maxThinArchive = 64 << 10

// TestThinImageSaveLoad saves a thin image on one daemon and loads it on a
// fresh one with its own plugin instance and the same CernVM-FS root: the
// image travels as its descriptor alone and runs there.
func TestThinImageSaveLoad(t *testing.T) {
	cvmfsRoot := newCVMFSRoot(t)
	layers := thinLayers()
	desc := publishThin(t, cvmfsRoot, layers)
	archive := filepath.Join(t.TempDir(), "thin-save.tar")

	first := startWithPlugin(t, cvmfsRoot)
	importThin(t, first, desc.JSON(), thinRef)
	first.MustDocker(t, "save", "-o", archive, thinRef)

	info, err := os.Stat(archive)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("docker save of the thin image: %d bytes", info.Size())
	if info.Size() > maxThinArchive {
		t.Errorf("docker save of the thin image is %d bytes, want at most %d", info.Size(), maxThinArchive)
	}

	checkThinArchive(t, archive, desc.JSON())

	second := startWithPlugin(t, cvmfsRoot)
	second.MustDocker(t, "load", "-i", archive)
	checkListing(t, second, thinRef, expectListing(t, layers...))
}

// checkThinArchive checks that a saved thin image has one layer whose tar
// holds thin.json alone, with the descriptor's bytes.
func checkThinArchive(t *testing.T, archive string, descriptor []byte) {
	t.Helper()

	layerTars, err := dockertest.ArchiveLayers(archive)
	if err != nil {
		t.Fatal(err)
	}
	if len(layerTars) != 1 {
		t.Fatalf("saved thin image has %d layers, want 1", len(layerTars))
	}
	names, content, err := dockertest.TarNames(bytes.NewReader(layerTars[0]), dockertest.ThinDescriptorName)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{dockertest.ThinDescriptorName}) {
		t.Errorf("saved thin layer holds [%s], want thin.json alone", strings.Join(names, " "))
	}
	if !bytes.Equal(content, descriptor) {
		t.Errorf("saved thin.json is %q, want the imported descriptor %q", content, descriptor)
	}
}
