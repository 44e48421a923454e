package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/cvmfs/cvmfstest"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/test/dockertest"
)

// nobodyID is the uid and gid of Debian's user nobody, whom the staged
// client runs as here: the test machine has no cvmfs user.
const nobodyID = 65534

// TestManagedInternalMount builds the managed plugin with a CernVM-FS
// client staged into its root file system, `make plugin-dir CVMFS_CLIENT=`,
// and runs a thin image with MOUNT_METHOD=internal. The client is the
// stand-in, linked dynamically as the real one is, so that it runs in the
// plugin only if the staging brought its libraries, its dynamic linker, its
// configuration and its user along. The plugin mounts the repository in
// its own mount namespace when the container starts, and unmounts it when
// the container is gone.
func TestManagedInternalMount(t *testing.T) {
	dockertest.Require(t)
	tmp := t.TempDir()

	// The plugin's /cvmfs is bound to cvmfsRoot. The stand-in's source,
	// standing for the servers, and its log sit below it, so that the
	// plugin reaches them and the test reads them.
	cvmfsRoot := newSharedCVMFSRoot(t)
	standIn := &cvmfstest.StandIn{
		Source: filepath.Join(cvmfsRoot, ".standin", "source"),
		Log:    filepath.Join(cvmfsRoot, ".standin", "cvmfs2.log"),
	}
	config := filepath.Join(tmp, "etc-cvmfs")
	if err := os.MkdirAll(config, 0o755); err != nil {
		t.Fatal(err)
	}
	params := fmt.Sprintf("# stand-in parameters, read as the client reads its own\n"+
		"%s=/cvmfs/.standin/source\nexport %s=\"/cvmfs/.standin/cvmfs2.log\"\n",
		cvmfstest.SourceEnv, cvmfstest.LogEnv)
	if err := os.WriteFile(filepath.Join(config, "default.local"), []byte(params), 0o644); err != nil {
		t.Fatal(err)
	}

	dir := filepath.Join(tmp, "plugin")
	client := cvmfstest.BuildDynamic(t)
	out, err := dockertest.BuildPluginDir(moduleDir, dir,
		"CVMFS_CLIENT="+client, "CVMFS_CONFIG="+config, "CVMFS_USER=nobody")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("make plugin-dir:\n%s", out)
	checkStagedClient(t, filepath.Join(dir, "rootfs"), client, params)

	m := dockertest.StartManaged(t, dockertest.ManagedConfig{
		PluginDir:   dir,
		CVMFSSource: cvmfsRoot,
		Settings:    []string{"MOUNT_METHOD=internal", "CVMFS_USER=nobody"},
	})
	if got := driverStatus(t, m.Daemon)["Mount Method"]; got != "internal" {
		t.Errorf("docker info shows Mount Method %q, want internal", got)
	}
	layers := thinLayers()
	importThin(t, m.Daemon, publishThin(t, standIn.Source, layers).JSON(), thinRef)

	repoMount := "/cvmfs/" + repo
	pluginMounts := func(when string, want ...string) {
		t.Helper()
		pid := m.PluginPID()
		if pid == 0 {
			t.Fatalf("%s, the plugin does not run", when)
		}
		got, err := dockertest.MountsUnderIn(pid, repoMount)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s, mounted at %s in the plugin: %q, want %q", when, repoMount, got, want)
		}
	}
	pluginMounts("after importing the thin image")

	runDetached(t, m, "e2e-internal", thinRef)
	pluginMounts("with a container of the thin image running", repoMount)
	got := m.MustDocker(t, "exec", "e2e-internal", "cat", "/data/a.txt", "/data/link-os")
	if want := "a from layer 1\nNAME=e2e\n"; got != want {
		t.Errorf("files read in the container: %q, want %q", got, want)
	}

	// The repository was mounted inside the plugin, and propagation from
	// the host to the plugin goes one way: the host sees no mount below
	// its directory, which is a mount itself.
	if host, err := dockertest.MountsUnder(cvmfsRoot); err != nil || !slices.Equal(host, []string{cvmfsRoot}) {
		t.Errorf("mounts at the host's CernVM-FS directory or below: %q, %v; want that directory alone", host, err)
	}
	// dockerd mounts and unmounts the init layer and the container's
	// layer before it starts the container, and each mount runs the
	// client, as the user the plugin found in its own /etc/passwd.
	calls := readLines(t, standIn.Log)
	wantCall := fmt.Sprintf("%s %s ", repo, repoMount)
	wantIDs := fmt.Sprintf("uid=%d,gid=%d", nobodyID, nobodyID)
	for _, c := range calls {
		if !strings.HasPrefix(c, wantCall) || !strings.Contains(c, wantIDs) {
			t.Errorf("the staged client was run as %q, want it run for %s on %s with %s", c, repo, repoMount, wantIDs)
		}
	}

	// Killed, the plugin is started again by dockerd in a new container,
	// whose mount namespace holds none of the old one's mounts. The plugin
	// takes the running container's layers over and mounts the repository
	// for them, and a new container of the thin image runs. (A real
	// client dies with the old container, so the running container would
	// have lost the files it had not read yet; README.md says so.)
	m.KillPlugin(t)
	if got := m.Run(t, thinRef, "cat", "/data/a.txt"); got != "a from layer 1\n" {
		t.Errorf("a file read in a container started after the plugin was killed: %q", got)
	}
	pluginMounts("after the restarted plugin ran a container", repoMount)

	m.MustDocker(t, "rm", "-f", "e2e-internal")
	pluginMounts("after removing the container")
}

// checkStagedClient checks what the staging put into the plugin's root
// file system: the client where the plugin looks for it, the dynamic
// linker the client names, /bin/sh, the configuration, the user and the
// cache.
func checkStagedClient(t *testing.T, rootfs, client, params string) {
	t.Helper()

	interp, err := cvmfstest.Interpreter(client)
	if err != nil || interp == "" {
		t.Fatalf("the client names no dynamic linker: %q, %v", interp, err)
	}
	for _, p := range []string{"/usr/bin/cvmfs2", "/bin/sh", interp} {
		fi, err := os.Stat(filepath.Join(rootfs, p))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			t.Errorf("the plugin's root file system has no executable %s: %v", p, err)
		}
	}
	if got, err := os.ReadFile(filepath.Join(rootfs, "etc/cvmfs/default.local")); err != nil || string(got) != params {
		t.Errorf("/etc/cvmfs/default.local in the plugin: %q, %v; want the one staged, %q", got, err, params)
	}
	passwd := readLines(t, filepath.Join(rootfs, "etc/passwd"))
	if !slices.ContainsFunc(passwd, func(l string) bool { return strings.HasPrefix(l, "nobody:x:65534:65534:") }) {
		t.Errorf("/etc/passwd in the plugin lacks the client's user nobody: %q", passwd)
	}
	fi, err := os.Stat(filepath.Join(rootfs, "var/lib/cvmfs"))
	if err != nil {
		t.Fatalf("the plugin has no cache directory: %v", err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || st.Uid != nobodyID || st.Gid != nobodyID {
		t.Errorf("the plugin's cache /var/lib/cvmfs: %v owned by %d:%d, want a directory owned by the client's user",
			fi.Mode(), st.Uid, st.Gid)
	}
}

// readLines returns the lines of a file, failing the test if it cannot be
// read.
func readLines(t *testing.T, p string) []string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimRight(string(data), "\n"), "\n")
}
