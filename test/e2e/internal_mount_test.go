package e2e

import (
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/cvmfs/cvmfstest"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/test/dockertest"
)

// TestInternalMountMethod runs the plugin with --mount-method internal and a
// stand-in for cvmfs2 that bind-mounts the repository from a local source:
// the plugin mounts the repository below its CernVM-FS root when the first
// container of a thin image starts, shares it with the next, and unmounts
// it once the last container is removed.
func TestInternalMountMethod(t *testing.T) {
	dockertest.Require(t)
	s := cvmfstest.New(t, cvmfstest.Build(t))
	cvmfsRoot := newCVMFSRoot(t)
	repoMount := filepath.Join(cvmfsRoot, repo)
	// Registered before the daemon starts, so it runs after its teardown.
	t.Cleanup(func() {
		if err := dockertest.UnmountAll(cvmfsRoot); err != nil {
			t.Errorf("failed to unmount the repositories: %v", err)
		}
	})

	layers := thinLayers()
	desc := publishThin(t, s.Source, layers)
	d := dockertest.Start(t, dockertest.Config{
		Plugin:     pluginBinary(t),
		CVMFSRoot:  cvmfsRoot,
		PluginArgs: []string{"--mount-method", "internal", "--cvmfs2", s.Binary, "--cvmfs-user", "root"},
		PluginEnv:  s.Env(),
	})
	if got := driverStatus(t, d)["Mount Method"]; got != "internal" {
		t.Errorf("docker info shows Mount Method %q, want internal", got)
	}
	importThin(t, d, desc.JSON(), thinRef)

	// checkRepo checks whether the repository is mounted, once, and
	// returns how often the plugin ran the client so far.
	checkRepo := func(when string, mounted bool) int {
		t.Helper()
		got, err := dockertest.MountsUnder(cvmfsRoot)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		if mounted {
			want = []string{repoMount}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s, mounted below the CernVM-FS root: %q, want %q", when, got, want)
		}
		return len(s.Mounts(t))
	}
	if runs := checkRepo("after importing the thin image", false); runs != 0 {
		t.Errorf("the plugin ran cvmfs2 %d times to import a thin image, want none", runs)
	}

	// dockerd mounts and unmounts the init layer, then the container's
	// layer, before it starts the container; the repository follows them.
	d.MustDocker(t, "run", "-d", "--name", "e2e-first", "--network", "none", thinRef, "sleep", "600")
	runs := checkRepo("with one container running", true)
	d.MustDocker(t, "run", "-d", "--name", "e2e-second", "--network", "none", thinRef, "sleep", "600")
	if more := checkRepo("with two containers running", true); more != runs {
		t.Errorf("a second container while the first runs ran cvmfs2 %d more times, want none", more-runs)
	}
	got := d.MustDocker(t, "exec", "e2e-second", "cat", "/data/a.txt", "/data/link-os")
	if want := "a from layer 1\nNAME=e2e\n"; got != want {
		t.Errorf("files read in a container: %q, want %q", got, want)
	}

	// The client dies while containers use the repository, and leaves its
	// mount behind without a server. The next container still starts and
	// reads its files: the plugin detaches the dead mount and runs the
	// client again.
	if err := syscall.Unmount(repoMount, syscall.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	cvmfstest.DeadMount(t, repoMount)
	got = d.MustDocker(t, "run", "--rm", "--network", "none", thinRef, "cat", "/data/a.txt")
	if want := "a from layer 1\n"; got != want {
		t.Errorf("a file read in a container started after the client died: %q, want %q", got, want)
	}
	if after := checkRepo("after a container started over the dead mount", true); after <= runs {
		t.Errorf("the plugin ran cvmfs2 %d times after the client died, want it run again", after-runs)
	}

	d.MustDocker(t, "rm", "-f", "e2e-first")
	checkRepo("after removing one of the containers", true)
	d.MustDocker(t, "rm", "-f", "e2e-second")
	checkRepo("after removing the last container", false)

	checkListing(t, d, thinRef, expectListing(t, layers...))
	checkRepo("after listing the image in a container removed after it", false)
}
