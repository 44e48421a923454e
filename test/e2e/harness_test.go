package e2e

import (
	"path/filepath"
	"testing"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/test/dockertest"
)

// TestHarnessWithVFS checks the harness itself against dockerd's built-in
// vfs driver, with no plugin involved: a failure here is the harness's or
// the machine's, not the plugin's. Loading the thin image's layers as an
// ordinary image checks the listing the thin-image tests expect against
// Docker's own handling of whiteouts.
func TestHarnessWithVFS(t *testing.T) {
	dockertest.Require(t)

	d := dockertest.Start(t, dockertest.Config{StorageDriver: "vfs"})
	importBase(t, d)

	if got := d.Run(t, baseRef, "echo", "hello"); got != "hello\n" {
		t.Errorf("echo in a container printed %q, want %q", got, "hello\n")
	}

	layers := thinLayers()
	archive := filepath.Join(t.TempDir(), "fat.tar")
	if err := dockertest.WriteImageArchive(archive, "e2e/fat:latest", layers...); err != nil {
		t.Fatal(err)
	}
	d.MustDocker(t, "load", "-i", archive)
	checkListing(t, d, "e2e/fat", expectListing(t, layers...))
}
