package e2e

import (
	"path/filepath"
	"testing"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/test/dockertest"
)

// TestRegularImage runs ordinary images through the plugin: one imported
// from a tar, and one of several layers loaded from an archive, whose
// whiteouts and opaque directory the driver has to apply.
func TestRegularImage(t *testing.T) {
	d := startWithPlugin(t, newCVMFSRoot(t))

	t.Run("import and run", func(t *testing.T) {
		importBase(t, d)
		if got := d.Run(t, baseRef, "echo", "hello"); got != "hello\n" {
			t.Errorf("echo in a container printed %q, want %q", got, "hello\n")
		}
		checkListing(t, d, baseRef, expectListing(t, dockertest.BusyboxLayer()))
	})

	t.Run("load layers with whiteouts", func(t *testing.T) {
		layers := thinLayers()
		archive := filepath.Join(t.TempDir(), "fat.tar")
		if err := dockertest.WriteImageArchive(archive, "e2e/fat:latest", layers...); err != nil {
			t.Fatal(err)
		}
		d.MustDocker(t, "load", "-i", archive)
		checkListing(t, d, "e2e/fat", expectListing(t, layers...))
	})
}
