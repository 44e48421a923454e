package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/cvmfs/cvmfstest"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/test/dockertest"
)

// TestBrokenThinImage imports and runs thin images that cannot work. Each
// must fail, at `docker import` or at `docker run`, with an error that names
// what is wrong, leave no mount behind, and leave the daemon working.
func TestBrokenThinImage(t *testing.T) {
	cvmfsRoot := newCVMFSRoot(t)
	good := publishThin(t, cvmfsRoot, thinLayers()[:1]).Layers[0]
	missing := dockertest.ThinLayer{
		Digest: strings.Repeat("0", 64),
		URL:    "cvmfs://" + repo + "/layers/" + strings.Repeat("0", 64),
	}
	missingDir := dockertest.LayerDir(cvmfsRoot, repo, missing)

	// withURL lists a good base layer and a second one at url.
	withURL := func(url string) []byte {
		return dockertest.NewDescriptor(good, dockertest.ThinLayer{Digest: good.Digest, URL: url}).JSON()
	}
	tests := []struct {
		name       string
		descriptor []byte
		// The error must contain each of these.
		wantInError []string
	}{
		{
			name:        "bad JSON",
			descriptor:  []byte(`{"version": "1.0", "layers": [`),
			wantInError: []string{"thin.json", "JSON"},
		},
		{
			name:        "no layers field",
			descriptor:  []byte(`{"version": "1.0", "origin": "e2e"}`),
			wantInError: []string{"layers", "missing"},
		},
		{
			name: "min_version too new",
			descriptor: []byte(fmt.Sprintf(
				`{"version": "1.0", "min_version": "99.0", "layers": [{"digest": %q, "url": %q}]}`,
				good.Digest, good.URL)),
			wantInError: []string{"min_version", "99.0"},
		},
		{
			name:        "URL with another scheme",
			descriptor:  withURL("https://example.org/layers/" + good.Digest),
			wantInError: []string{"layers[1].url", "https"},
		},
		{
			name:        "URL leaving its repository",
			descriptor:  withURL("cvmfs://" + repo + "/../../etc"),
			wantInError: []string{"layers[1].url", "../../etc"},
		},
		{
			name:        "missing layer directory",
			descriptor:  dockertest.NewDescriptor(good, missing).JSON(),
			wantInError: []string{missing.URL, missingDir, "mounted"},
		},
	}

	d := startWithPlugin(t, cvmfsRoot)
	importBase(t, d)

	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := fmt.Sprintf("e2e/broken%d", i)
			msg := failThinImage(t, d, tt.descriptor, ref)
			for _, want := range tt.wantInError {
				if !strings.Contains(msg, want) {
					t.Errorf("error does not mention %q:\n%s", want, msg)
				}
			}

			mounts, err := dockertest.MountsUnder(d.Home)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range mounts {
				if m != d.Home {
					t.Errorf("mount left in the plugin's home after the failure: %s", m)
				}
			}

			if got := d.Run(t, baseRef, "echo", "still working"); got != "still working\n" {
				t.Errorf("a regular run after the failure printed %q", got)
			}
		})
	}
}

// failThinImage imports a thin image holding descriptor and runs it,
// expecting one of the two to fail, and returns the error the user reads.
func failThinImage(t *testing.T, d *dockertest.Daemon, descriptor []byte, ref string) string {
	t.Helper()

	tarPath := t.TempDir() + "/thin.tar"
	if err := dockertest.WriteThinTar(tarPath, descriptor); err != nil {
		t.Fatal(err)
	}
	res := d.Docker(t, "import", tarPath, ref)
	if res.ExitCode != 0 {
		t.Logf("docker import failed as it should: %s", strings.TrimSpace(res.Stderr))
		return res.Stderr
	}

	res = d.Docker(t, "run", "--rm", "--network", "none", ref, "true")
	if res.ExitCode == 0 {
		t.Fatalf("docker import and docker run of a broken thin image both succeeded; descriptor:\n%s", descriptor)
	}
	t.Logf("docker run failed as it should: %s", strings.TrimSpace(res.Stderr))
	return res.Stderr
}

// TestDeadRepositoryClient runs a thin image whose repository the host
// mounted with a client that has since died, leaving its FUSE mount
// behind: the run fails with one sentence saying so and what to do, and
// once the host has mounted the repository again, the image runs.
func TestDeadRepositoryClient(t *testing.T) {
	cvmfsRoot := newCVMFSRoot(t)
	staging := filepath.Join(t.TempDir(), "staging")
	layers := thinLayers()
	desc := publishThin(t, staging, layers)
	repoMount := filepath.Join(cvmfsRoot, repo)
	if err := os.Mkdir(repoMount, 0o755); err != nil {
		t.Fatal(err)
	}
	// Registered before the daemon starts, so it runs after its teardown.
	t.Cleanup(func() {
		if err := dockertest.UnmountAll(cvmfsRoot); err != nil {
			t.Errorf("failed to unmount the repository: %v", err)
		}
	})
	d := startWithPlugin(t, cvmfsRoot)
	importThin(t, d, desc.JSON(), thinRef)

	cvmfstest.DeadMount(t, repoMount)
	res := d.Docker(t, "run", "--rm", "--network", "none", thinRef, "true")
	t.Logf("docker run over the dead mount: %s", strings.TrimSpace(res.Stderr))
	for _, want := range []string{"cvmfs://" + repo + "/layers/", "transport endpoint is not connected",
		"the CernVM-FS client of repository " + repo + " has died", "umount -l"} {
		if res.ExitCode == 0 || !strings.Contains(res.Stderr, want) {
			t.Errorf("running a thin image whose repository's client died: want an error with %q: %s", want, res)
		}
	}

	if err := syscall.Unmount(repoMount, syscall.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	dockertest.BindMount(t, filepath.Join(staging, repo), repoMount)
	checkListing(t, d, thinRef, expectListing(t, layers...))
}
