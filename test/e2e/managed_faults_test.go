package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/test/dockertest"
)

// stoppableLoop is a container command that ends at once on SIGTERM, so
// that dockerd's shutdown does not wait its 10 s grace period for it.
var stoppableLoop = []string{"sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"}

// startThinManaged starts a daemon with the managed plugin, the thin image
// and the base image, and returns it with the thin image's layers.
func startThinManaged(t *testing.T, liveRestore bool) (*dockertest.Managed, []dockertest.Layer) {
	t.Helper()

	cvmfsRoot := newSharedCVMFSRoot(t)
	layers := thinLayers()
	desc := publishThin(t, cvmfsRoot, layers)
	dockertest.Require(t)
	m := dockertest.StartManaged(t, dockertest.ManagedConfig{
		PluginDir:   pluginDir(t),
		CVMFSSource: cvmfsRoot,
		LiveRestore: liveRestore,
	})
	importBase(t, m.Daemon)
	importThin(t, m.Daemon, desc.JSON(), thinRef)
	return m, layers
}

// runDetached starts a container of image running stoppableLoop and
// returns its name.
func runDetached(t *testing.T, m *dockertest.Managed, name, image string) string {
	t.Helper()

	args := append([]string{"run", "-d", "--name", name, "--network", "none", image}, stoppableLoop...)
	m.MustDocker(t, args...)
	return name
}

// homeMounts returns the mount points below the driver's home.
func homeMounts(t *testing.T, m *dockertest.Managed) []string {
	t.Helper()

	mounts, err := dockertest.MountsUnder(m.Home)
	if err != nil {
		t.Fatal(err)
	}
	var below []string
	for _, mp := range mounts {
		if mp != m.Home {
			below = append(below, mp)
		}
	}
	return below
}

// checkNoHomeMounts fails the test if anything is mounted below the home.
func checkNoHomeMounts(t *testing.T, m *dockertest.Managed, when string) {
	t.Helper()
	for _, mp := range homeMounts(t, m) {
		t.Errorf("still mounted %s: %s", when, mp)
	}
}

// checkThinRuns runs the thin image and reads a file of its top layer.
func checkThinRuns(t *testing.T, m *dockertest.Managed) {
	t.Helper()
	if got := m.Run(t, thinRef, "cat", "/data/c.txt"); got != "c from layer 2\n" {
		t.Errorf("a new container of the thin image read %q", got)
	}
}

// TestManagedPluginKilled kills the plugin with SIGKILL while a container
// of the thin image runs. dockerd restarts the plugin, which serves the
// next calls from its saved Init without a new one, over the socket file
// the killed process left behind; the running container, new containers
// and removing the container all work, and nothing stays mounted.
func TestManagedPluginKilled(t *testing.T) {
	m, _ := startThinManaged(t, false)
	c := runDetached(t, m, "e2e-keep", thinRef)
	logBefore := len(m.PluginLog())

	m.KillPlugin(t)

	checkThinRuns(t, m)
	if got := m.MustDocker(t, "exec", c, "cat", "/data/a.txt"); got != "a from layer 1\n" {
		t.Errorf("exec in the container that outlived the plugin read %q", got)
	}
	after := strings.Join(m.PluginLog()[logBefore:], "\n")
	if !strings.Contains(after, "graphdriver rebuilt from saved Init") {
		t.Errorf("the restarted plugin did not rebuild its driver from the saved Init:\n%s", after)
	}
	if strings.Contains(after, "graphdriver initialised") {
		t.Errorf("dockerd sent a new Init to the restarted plugin:\n%s", after)
	}

	m.MustDocker(t, "rm", "-f", c)
	checkNoHomeMounts(t, m, "after the container was removed")
}

// TestManagedDaemonRestart restarts dockerd while a container of the thin
// image runs, with live-restore off and on, and checks that containers,
// mounts and the plugin are consistent afterwards.
func TestManagedDaemonRestart(t *testing.T) {
	t.Run("live-restore off", func(t *testing.T) {
		m, _ := startThinManaged(t, false)
		c := runDetached(t, m, "e2e-restart", thinRef)

		m.Restart(t, false)

		if state := inspectContainer(t, m, c, "{{.State.Status}}"); state != "exited" {
			t.Errorf("container is %s after dockerd restarted without live-restore, want exited", state)
		}
		checkNoHomeMounts(t, m, "after dockerd stopped the container and restarted")
		m.MustDocker(t, "start", c)
		if got := m.MustDocker(t, "exec", c, "cat", "/data/a.txt"); got != "a from layer 1\n" {
			t.Errorf("exec in the restarted container read %q", got)
		}
		checkThinRuns(t, m)
		m.MustDocker(t, "rm", "-f", c)
		checkNoHomeMounts(t, m, "after the container was removed")
	})

	t.Run("live-restore on", func(t *testing.T) {
		m, _ := startThinManaged(t, true)
		c := runDetached(t, m, "e2e-live", thinRef)
		pid := inspectContainer(t, m, c, "{{.State.Pid}}")
		pluginPID := m.PluginPID()
		mounts := homeMounts(t, m)

		m.Restart(t, true)

		if got := inspectContainer(t, m, c, "{{.State.Status}} {{.State.Pid}}"); got != "running "+pid {
			t.Errorf("container is %q after a live-restore restart, want %q", got, "running "+pid)
		}
		if got := m.PluginPID(); got != pluginPID {
			t.Errorf("plugin pid %d after a live-restore restart, want the same process %d", got, pluginPID)
		}
		if got := homeMounts(t, m); strings.Join(got, " ") != strings.Join(mounts, " ") {
			t.Errorf("mounts below the home changed over a live-restore restart:\nbefore %q\nafter  %q", mounts, got)
		}
		if got := m.MustDocker(t, "exec", c, "cat", "/data/a.txt"); got != "a from layer 1\n" {
			t.Errorf("exec in the restored container read %q", got)
		}
		checkThinRuns(t, m)
		m.MustDocker(t, "rm", "-f", c)
		checkNoHomeMounts(t, m, "after the restored container was removed")
	})
}

// TestManagedCrash kills dockerd and then the plugin with SIGKILL while a
// container runs, as a machine that lost both would, leaving the plugin's
// socket file and the container's mount behind. dockerd starts again, the
// plugin replaces the stale socket, the container's layers are unmounted
// when dockerd cleans the container up, and everything works.
func TestManagedCrash(t *testing.T) {
	m, _ := startThinManaged(t, false)
	c := runDetached(t, m, "e2e-crash", thinRef)

	m.KillDockerd(t)
	pid := m.PluginPID()
	if pid == 0 {
		t.Fatal("the plugin does not run after dockerd was killed")
	}
	m.KillPluginProcess(t, pid)
	socket := filepath.Join(m.PluginRuntimeDir(), "cvmfs.sock")
	if _, err := os.Lstat(socket); err != nil {
		t.Fatalf("the killed plugin left no socket to clean up: %v", err)
	}
	if len(homeMounts(t, m)) == 0 {
		t.Fatal("the crash left no mount behind to clean up")
	}

	m.StartDockerd(t)

	if state := inspectContainer(t, m, c, "{{.State.Status}}"); state != "exited" {
		t.Errorf("container is %s after the crash, want exited", state)
	}
	checkNoHomeMounts(t, m, "after dockerd came back from the crash")
	checkThinRuns(t, m)
	m.MustDocker(t, "start", c)
	m.MustDocker(t, "rm", "-f", c)
	checkNoHomeMounts(t, m, "after the container was removed")
}

// TestManagedDisable tries to disable the plugin while dockerd uses it,
// which Docker refuses without touching it, and then disables it once
// dockerd no longer does: nothing stays mounted, and enabling it again
// brings back the images.
func TestManagedDisable(t *testing.T) {
	m, _ := startThinManaged(t, false)
	c := runDetached(t, m, "e2e-busy", thinRef)

	res := m.Docker(t, "plugin", "disable", m.PluginName)
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, "in use") {
		t.Fatalf("disabling the plugin in use: %s", res)
	}
	if got := m.MustDocker(t, "exec", c, "cat", "/data/a.txt"); got != "a from layer 1\n" {
		t.Errorf("exec after the refused disable read %q", got)
	}
	m.MustDocker(t, "rm", "-f", c)

	m.SwitchToBuiltin(t)
	m.MustDocker(t, "plugin", "disable", m.PluginName)
	if pid := m.PluginPID(); pid != 0 {
		t.Errorf("plugin process %d still runs after disable", pid)
	}
	for _, dir := range []string{filepath.Join(m.DataRoot, "plugins"), m.PluginRuntimeDir()} {
		mounts, err := dockertest.MountsUnder(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, mp := range mounts {
			t.Errorf("still mounted after the plugin was disabled: %s", mp)
		}
	}

	m.MustDocker(t, "plugin", "enable", m.PluginName)
	if err := m.SwitchToPlugin(t); err != nil {
		t.Fatal(err)
	}
	checkThinRuns(t, m)
}

// inspectContainer returns a field of docker inspect of a container.
func inspectContainer(t *testing.T, m *dockertest.Managed, container, format string) string {
	t.Helper()
	return strings.TrimSpace(m.MustDocker(t, "inspect", "--format", format, container))
}
