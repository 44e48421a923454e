package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/test/dockertest"
)

// containerChanges is what changeScript does to a container of the thin
// image, as a layer on top of the thin image's layers.
var containerChanges = dockertest.Layer{
	dockertest.File("data/new.txt", "new\n"),
	dockertest.Whiteout("data/a.txt"),
	dockertest.File("data/c.txt", "c from layer 2\nmore\n"),
	dockertest.Dir("opq/made"),
}

// changeScript adds, deletes and modifies files of the thin image's layers.
const changeScript = "echo new > /data/new.txt && rm /data/a.txt && " +
	"echo more >> /data/c.txt && mkdir /opq/made"

// wantContainerDiff is what `docker diff` reports for changeScript.
var wantContainerDiff = []string{
	"A /data/new.txt",
	"A /opq/made",
	"C /data",
	"C /data/c.txt",
	"C /opq",
	"D /data/a.txt",
}

// TestThinImage runs a thin image whose layers are directories in the
// CernVM-FS root, and the Docker commands that build on it.
func TestThinImage(t *testing.T) {
	cvmfsRoot := newCVMFSRoot(t)
	layers := thinLayers()
	desc := publishThin(t, cvmfsRoot, layers)
	d := startWithPlugin(t, cvmfsRoot)
	importThin(t, d, desc.JSON(), thinRef)

	t.Run("run", func(t *testing.T) {
		got := d.Run(t, thinRef, "cat", "/data/a.txt", "/data/link-a", "/data/link-os")
		if want := "a from layer 1\na from layer 1\nNAME=e2e\n"; got != want {
			t.Errorf("files read in a container: %q, want %q", got, want)
		}
		checkListing(t, d, thinRef, expectListing(t, layers...))
	})

	t.Run("diff", func(t *testing.T) {
		d.MustDocker(t, "run", "--name", "e2e-diff", "--network", "none", thinRef, "sh", "-c", changeScript)
		got := strings.Split(strings.TrimSpace(d.MustDocker(t, "diff", "e2e-diff")), "\n")
		if diff := dockertest.DiffLines(wantContainerDiff, got); diff != "" {
			t.Errorf("docker diff of a container of the thin image (-want +got):\n%s", diff)
		}
	})

	t.Run("commit", func(t *testing.T) {
		d.MustDocker(t, "run", "--name", "e2e-commit", "--network", "none", thinRef, "sh", "-c", changeScript)
		d.MustDocker(t, "commit", "e2e-commit", "e2e/committed")
		want := expectListing(t, slices.Concat(layers, []dockertest.Layer{containerChanges})...)
		checkListing(t, d, "e2e/committed", want)
	})

	t.Run("build", func(t *testing.T) {
		dir := t.TempDir()
		dockerfile := "FROM " + thinRef + "\n" +
			"RUN echo built > /data/built.txt && rm /data/c.txt\n" +
			"RUN mkdir /data/made && ln -s ../built.txt /data/made/link && cat /data/made/link\n"
		if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
			t.Fatal(err)
		}
		steps := []dockertest.Layer{
			{dockertest.File("data/built.txt", "built\n"), dockertest.Whiteout("data/c.txt")},
			{dockertest.Dir("data/made"), dockertest.Symlink("data/made/link", "../built.txt")},
		}

		d.MustDocker(t, "build", "--network", "none", "-t", "e2e/built", dir)
		checkListing(t, d, "e2e/built", expectListing(t, slices.Concat(layers, steps)...))
	})
}

// TestThinImageAUFSLayers runs a thin image whose layer directories keep
// their whiteouts as AUFS marker files, as `cvmfs_server ingest` publishes
// them: the deleted entries and the markers must not show in a container,
// and the opaque directory must hide what lies below it.
func TestThinImageAUFSLayers(t *testing.T) {
	cvmfsRoot := newCVMFSRoot(t)
	layers := thinLayers()
	desc := publishThinAs(t, cvmfsRoot, layers, dockertest.AUFSFormat)
	d := startWithPlugin(t, cvmfsRoot)
	importThin(t, d, desc.JSON(), thinRef)

	checkListing(t, d, thinRef, expectListing(t, layers...))
}
