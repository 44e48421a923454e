package dockertest

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ManagedPluginName is the name the README installs the managed plugin
// under, and the -s value dockerd then runs with.
const ManagedPluginName = "cvmfs/overlay2-graphdriver"

// PluginDirEnv names a plugin directory (config.json and rootfs/, as
// `make plugin-dir` writes it) to test instead of building one.
const PluginDirEnv = "CVMFS_GRAPHDRIVER_PLUGIN_DIR"

// Managed plugin layout, as dockerd 20.10 lays it out.
const (
	// pluginSocketName is the interface socket config.json declares.
	pluginSocketName = "cvmfs.sock"
	// pluginRestartTimeout bounds the wait for dockerd to restart a
	// plugin that died.
	pluginRestartTimeout = 30 * time.Second
)

// PluginDirectory returns the managed plugin's directory to test:
// $CVMFS_GRAPHDRIVER_PLUGIN_DIR if set, or one that `make plugin-dir`
// writes into outDir with the version stamped "e2e". The Makefile target is
// the one users run, so the tests install what they would.
func PluginDirectory(moduleDir, outDir string) (string, error) {
	if dir := os.Getenv(PluginDirEnv); dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return "", fmt.Errorf("failed to resolve %s=%s: %w", PluginDirEnv, dir, err)
		}
		if _, err := os.Stat(filepath.Join(abs, "config.json")); err != nil {
			return "", fmt.Errorf("plugin directory from %s: %w", PluginDirEnv, err)
		}
		return abs, nil
	}

	dir := filepath.Join(outDir, "plugin")
	if _, err := BuildPluginDir(moduleDir, dir); err != nil {
		return "", err
	}
	return dir, nil
}

// BuildPluginDir runs `make plugin-dir` in moduleDir to write the plugin
// directory dir, with the version stamped "e2e" and vars, NAME=VALUE each,
// as more make variables. It returns what make printed.
func BuildPluginDir(moduleDir, dir string, vars ...string) (string, error) {
	args := append([]string{"--no-print-directory", "plugin-dir", "PLUGIN_DIR=" + dir, "VERSION=e2e"}, vars...)
	cmd := exec.Command("make", args...)
	cmd.Dir = moduleDir
	msg, err := cmd.CombinedOutput()
	if err != nil {
		return string(msg), fmt.Errorf("make plugin-dir %s failed in %s: %w\n%s", strings.Join(vars, " "), moduleDir, err, msg)
	}
	return string(msg), nil
}

// ManagedConfig says how a daemon with the managed plugin runs.
type ManagedConfig struct {
	// PluginDir is the plugin directory `docker plugin create` reads.
	PluginDir string
	// CVMFSSource is the host directory bound to the plugin's /cvmfs (the
	// plugin's "cvmfs.source" setting). Make it with SharedDir so that
	// repositories mounted below it later reach the plugin.
	CVMFSSource string
	// Settings are more `docker plugin set` arguments, KEY=VALUE each.
	Settings []string
	// DriverName is the -s value dockerd runs with; ManagedPluginName when
	// empty. It may carry a tag, as in "cvmfs/overlay2-graphdriver:latest".
	DriverName string
	// LiveRestore starts dockerd with live-restore on.
	LiveRestore bool
	// Remote, when set, is a plugin reference in a registry to install
	// with `docker plugin install` instead of creating the plugin from
	// PluginDir.
	Remote string
	// Prepare, when set, runs against the daemon before the plugin is
	// installed, for instance to log in to a registry.
	Prepare func(t *testing.T, d *Daemon)
}

// Managed is a private dockerd whose storage driver is the managed plugin,
// installed the way the README says: created and enabled while dockerd runs
// with a built-in driver, then dockerd restarted with -s.
type Managed struct {
	*Daemon
	// PluginName is the name the plugin was created under.
	PluginName string
	// PluginID is dockerd's id of the plugin.
	PluginID string

	cfg ManagedConfig
}

// StartManaged runs a fresh daemon with the managed plugin as its storage
// driver and registers its teardown with t.Cleanup. It fails the test if
// the plugin cannot be installed or dockerd does not come up with it.
func StartManaged(t *testing.T, cfg ManagedConfig) *Managed {
	t.Helper()

	m := InstallManaged(t, cfg)
	if err := m.SwitchToPlugin(t); err != nil {
		t.Fatal(err)
	}
	return m
}

// StartBare runs a fresh daemon with the built-in vfs driver and no plugin,
// for a test that installs the plugin itself; the teardown removes what a
// managed plugin leaves once FindPlugin has named it.
func StartBare(t *testing.T) *Managed {
	t.Helper()

	m := &Managed{PluginName: ManagedPluginName}
	t.Cleanup(func() { m.removeLeftovers(t) })
	m.Daemon = Start(t, Config{StorageDriver: "vfs"})
	t.Cleanup(func() { m.quiesce(t) })
	return m
}

// FindPlugin records the id of the plugin installed as name.
func (m *Managed) FindPlugin(t *testing.T, name string) {
	t.Helper()
	m.PluginName = name
	m.PluginID = strings.TrimSpace(m.MustDocker(t, "plugin", "inspect", "--format", "{{.ID}}", name))
}

// RestartWithConfig restarts dockerd with config as its configuration
// file and without the -s and --experimental flags, which config must
// then set as a user's /etc/docker/daemon.json would. dockerd must come
// up with storage driver driver; the plugin's home is then that of a
// managed plugin of that name.
func (m *Managed) RestartWithConfig(t *testing.T, config []byte, driver string) {
	t.Helper()

	if err := m.stopDockerd(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(m.Dir, "daemon.json"), config, 0o644); err != nil {
		t.Fatalf("failed to write daemon configuration: %v", err)
	}
	m.Driver = driver
	m.Home = filepath.Join(m.PropagatedMount(), driver)

	argv := DockerdArgs(m.Dir, m.DataRoot, m.host, m.name)
	p, err := StartProcess("dockerd "+filepath.Base(m.Dir), filepath.Join(m.Dir, "dockerd.log"), argv, os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	m.dockerd = p
	if err := m.waitForDockerd(); err != nil {
		t.Fatalf("%v\n%s", err, m.Logs())
	}
}

// waitForDockerd waits until dockerd answers with the expected driver.
func (m *Managed) waitForDockerd() error {
	deadline := time.Now().Add(dockerdStartTimeout)
	for {
		res := m.docker("info", "--format", "{{.Driver}}")
		if res.ExitCode == 0 {
			if got := strings.TrimSpace(res.Stdout); got != m.Driver {
				return fmt.Errorf("dockerd runs storage driver %q, want %q", got, m.Driver)
			}
			return nil
		}
		if m.dockerd.Exited() {
			return fmt.Errorf("dockerd exited during start: %v", m.dockerd.exitError())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dockerd did not answer within %s: %s", dockerdStartTimeout, res.Stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Shell runs a shell command line in dir against the daemon, as a user
// whose DOCKER_HOST names it would, with the docker client that comes with
// the daemon first in PATH, and returns its output. It must succeed.
func (d *Daemon) Shell(t *testing.T, dir, line string) string {
	t.Helper()

	start := time.Now()
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", line)
	cmd.Dir = dir
	cmd.Env = append(slices.Clone(d.env), "PATH="+filepath.Dir(DockerCLI)+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	t.Logf("%s: %v in %s", line, err, time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("%s failed: %v\n%s", line, err, out)
	}
	return string(out)
}

// InstallManaged runs a fresh daemon with the built-in vfs driver, creates
// the plugin in it, applies the settings and enables it, but leaves dockerd
// on vfs. Use SwitchToPlugin to restart dockerd with the plugin.
func InstallManaged(t *testing.T, cfg ManagedConfig) *Managed {
	t.Helper()

	m := &Managed{PluginName: ManagedPluginName, cfg: cfg}
	if m.cfg.DriverName == "" {
		m.cfg.DriverName = ManagedPluginName
	}
	// Cleanups run last registered first: this one runs after the
	// daemon's own teardown, the next one before it.
	t.Cleanup(func() { m.removeLeftovers(t) })
	m.Daemon = Start(t, Config{StorageDriver: "vfs"})
	t.Cleanup(func() { m.quiesce(t) })

	if cfg.Prepare != nil {
		cfg.Prepare(t, m.Daemon)
	}

	settings := append([]string{"cvmfs.source=" + cfg.CVMFSSource}, cfg.Settings...)
	if cfg.Remote != "" {
		m.MustDocker(t, append([]string{"plugin", "install", "--grant-all-permissions",
			"--alias", m.PluginName, cfg.Remote}, settings...)...)
	} else {
		m.MustDocker(t, "plugin", "create", m.PluginName, cfg.PluginDir)
		m.MustDocker(t, append([]string{"plugin", "set", m.PluginName}, settings...)...)
		m.MustDocker(t, "plugin", "enable", m.PluginName)
	}
	m.PluginID = strings.TrimSpace(m.MustDocker(t, "plugin", "inspect", "--format", "{{.ID}}", m.PluginName))
	return m
}

// Make runs a target of the project's Makefile in moduleDir against the
// daemon, as a user whose DOCKER_HOST names it would, and returns its
// output. The docker client that comes with the daemon is first in PATH.
// The command must succeed.
func (d *Daemon) Make(t *testing.T, moduleDir string, args ...string) string {
	t.Helper()

	start := time.Now()
	cmd := exec.Command("make", append([]string{"--no-print-directory"}, args...)...)
	cmd.Dir = moduleDir
	cmd.Env = append(slices.Clone(d.env), "PATH="+filepath.Dir(DockerCLI)+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	t.Logf("make %s: %v in %s", strings.Join(args, " "), err, time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("make %s failed: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// SwitchToPlugin restarts dockerd with the plugin as its storage driver.
func (m *Managed) SwitchToPlugin(t *testing.T) error {
	t.Helper()

	if err := m.stopDockerd(); err != nil {
		return err
	}
	m.Driver = m.cfg.DriverName
	m.Home = filepath.Join(m.PropagatedMount(), m.cfg.DriverName)
	if err := m.writeDaemonConfig(m.cfg.LiveRestore); err != nil {
		return err
	}
	return m.startDockerd(t)
}

// SwitchToBuiltin restarts dockerd with the built-in vfs driver; the
// plugin stays enabled but dockerd no longer uses it.
func (m *Managed) SwitchToBuiltin(t *testing.T) {
	t.Helper()

	if err := m.stopDockerd(); err != nil {
		t.Fatal(err)
	}
	m.Driver = "vfs"
	m.Home = filepath.Join(m.DataRoot, m.Driver)
	if err := m.startDockerd(t); err != nil {
		t.Fatal(err)
	}
}

// PropagatedMount is the host directory the plugin's propagated mount maps
// to; the driver's home lies below it.
func (m *Managed) PropagatedMount() string {
	return filepath.Join(m.DataRoot, "plugins", m.PluginID, "propagated-mount")
}

// PluginRuntimeDir is the plugin's exec root, which dockerd 20.10 puts in
// /run/docker/plugins/<id> whatever its --exec-root says.
func (m *Managed) PluginRuntimeDir() string {
	return filepath.Join(PluginDir, m.PluginID)
}

// Restart stops dockerd and starts it again with live-restore set as
// given. With live-restore on, running containers and the plugin stay up
// while dockerd is down.
func (m *Managed) Restart(t *testing.T, liveRestore bool) {
	t.Helper()

	if err := m.stopDockerd(); err != nil {
		t.Fatal(err)
	}
	m.cfg.LiveRestore = liveRestore
	if err := m.writeDaemonConfig(liveRestore); err != nil {
		t.Fatal(err)
	}
	if err := m.startDockerd(t); err != nil {
		t.Fatal(err)
	}
}

// KillDockerd kills dockerd with SIGKILL, as a crash would, and waits for
// it to be gone. Its containerd goes with it; the shims of containers and
// of the plugin stay.
func (m *Managed) KillDockerd(t *testing.T) {
	t.Helper()

	p := m.dockerd
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	t.Logf("dockerd (pid %d) killed", p.Pid())

	// dockerd's containerd dies with it. On a host, init reaps it; the
	// init of some containers and VMs reaps no orphans, and a zombie
	// containerd whose pid is still in its pid file makes the next dockerd
	// wait for it in vain ("timeout waiting for containerd to start").
	// Removing the pid file of a containerd that has ended does what
	// reaping it would.
	pidFile := filepath.Join(m.Dir, "exec", "containerd", "containerd.pid")
	data, err := os.ReadFile(pidFile)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return
	}
	deadline := time.Now().Add(dockerdStopGrace)
	for !processEnded(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("containerd (pid %d) still runs %s after dockerd was killed", pid, dockerdStopGrace)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := removeIfExists(pidFile); err != nil {
		t.Fatal(err)
	}
}

// StartDockerd starts dockerd again after KillDockerd.
func (m *Managed) StartDockerd(t *testing.T) {
	t.Helper()
	if err := m.startDockerd(t); err != nil {
		t.Fatal(err)
	}
}

// stopDockerd stops dockerd by its pid and waits for it.
func (m *Managed) stopDockerd() error {
	if m.dockerd == nil || m.dockerd.Exited() {
		return nil
	}
	if err := m.dockerd.Stop(dockerdStopGrace); err != nil {
		return fmt.Errorf("failed to stop dockerd: %w\n%s", err, m.Logs())
	}
	return nil
}

// writeDaemonConfig writes the daemon's configuration file.
func (m *Managed) writeDaemonConfig(liveRestore bool) error {
	content := "{}\n"
	if liveRestore {
		content = "{\"live-restore\": true}\n"
	}
	if err := os.WriteFile(filepath.Join(m.Dir, "daemon.json"), []byte(content), 0o644); err != nil {
		return fmt.Errorf("failed to write daemon configuration: %w", err)
	}
	return nil
}

// PluginPID returns the pid of the plugin's process, from the state its
// containerd shim keeps, or 0 when the plugin does not run.
func (m *Managed) PluginPID() int {
	p := filepath.Join(m.Dir, "exec", "containerd", "daemon", "io.containerd.runtime.v2.task",
		m.name+"-plugins", m.PluginID, "init.pid")
	data, err := os.ReadFile(p)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || processEnded(pid) {
		return 0
	}
	return pid
}

// KillPlugin kills the plugin's process with SIGKILL and waits until
// dockerd has started a new one that listens on the plugin socket. The
// killed process leaves its socket file behind.
func (m *Managed) KillPlugin(t *testing.T) {
	t.Helper()

	old := m.PluginPID()
	if old == 0 {
		t.Fatalf("the plugin does not run\n%s", m.Logs())
	}
	m.KillPluginProcess(t, old)

	socket := filepath.Join(m.PluginRuntimeDir(), pluginSocketName)
	deadline := time.Now().Add(pluginRestartTimeout)
	for {
		if pid := m.PluginPID(); pid != 0 && pid != old {
			if conn, err := net.DialTimeout("unix", socket, time.Second); err == nil {
				conn.Close()
				t.Logf("dockerd restarted the plugin as pid %d", pid)
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("dockerd did not restart the plugin within %s\n%s", pluginRestartTimeout, m.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// KillPluginProcess kills the plugin process pid with SIGKILL and waits
// until it has ended, without waiting for dockerd to restart it.
func (m *Managed) KillPluginProcess(t *testing.T, pid int) {
	t.Helper()

	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("failed to kill the plugin (pid %d): %v", pid, err)
	}
	deadline := time.Now().Add(pluginRestartTimeout)
	for !processEnded(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("plugin process %d still runs %s after SIGKILL", pid, pluginRestartTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("plugin (pid %d) killed", pid)
}

// processEnded reports whether pid has exited: it is gone, or a zombie
// waiting for its parent.
func processEnded(pid int) bool {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	line := string(data)
	i := strings.LastIndexByte(line, ')')
	fields := strings.Fields(line[i+1:])
	return len(fields) > 0 && (fields[0] == "Z" || fields[0] == "X")
}

// PluginLog returns the lines of the dockerd log that carry the plugin's
// output.
func (m *Managed) PluginLog() []string {
	data, err := os.ReadFile(filepath.Join(m.Dir, "dockerd.log"))
	if err != nil {
		return nil
	}
	var lines []string
	for line := range strings.Lines(string(data)) {
		if strings.Contains(line, "plugin="+m.PluginID) {
			lines = append(lines, strings.TrimRight(line, "\n"))
		}
	}
	return lines
}

// quiesce brings the daemon into a state that its teardown can stop
// cleanly: no containers, and live-restore off, so that stopping dockerd
// also stops the plugin rather than leaving it running.
func (m *Managed) quiesce(t *testing.T) {
	if m.dockerd == nil || m.dockerd.Exited() {
		return
	}
	if ids := strings.Fields(m.docker("ps", "-aq").Stdout); len(ids) > 0 {
		if res := m.docker(append([]string{"rm", "-f"}, ids...)...); res.ExitCode != 0 {
			t.Errorf("daemon teardown: %s", res)
		}
	}
	if !m.cfg.LiveRestore {
		return
	}
	// A reload cannot turn live-restore off for plugins (dockerd's plugin
	// manager keeps the value it started with), so dockerd is restarted
	// without it; its shutdown then stops the plugin.
	if err := m.stopDockerd(); err != nil {
		t.Errorf("daemon teardown: %v", err)
		return
	}
	m.cfg.LiveRestore = false
	if err := m.writeDaemonConfig(false); err != nil {
		t.Errorf("daemon teardown: %v", err)
		return
	}
	if err := m.startDockerd(t); err != nil {
		t.Errorf("daemon teardown: %v", err)
	}
}

// removeLeftovers runs after the daemon's teardown: it stops any process
// still attached to the daemon's containerd (a plugin or container that
// outlived dockerd) by pid, and removes the plugin's runtime directory.
func (m *Managed) removeLeftovers(t *testing.T) {
	if m.Daemon == nil {
		return
	}
	address := filepath.Join(m.Dir, "exec", "containerd", "containerd.sock")
	left, err := processesUsing(address)
	if err != nil {
		t.Errorf("daemon teardown: %v", err)
	}
	for _, pid := range left {
		t.Errorf("daemon teardown: process %d still runs for the stopped daemon; killing it", pid)
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			t.Errorf("daemon teardown: failed to kill %d: %v", pid, err)
		}
	}

	if m.PluginID == "" {
		return
	}
	dir := m.PluginRuntimeDir()
	if err := UnmountAll(dir); err != nil {
		t.Errorf("daemon teardown: %v", err)
		return
	}
	if err := os.RemoveAll(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("daemon teardown: failed to remove %s: %v", dir, err)
	}
}

// processesUsing returns the pids of the containerd shims whose command
// line names the containerd socket address, and of their descendants,
// children first.
func processesUsing(address string) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("failed to list processes: %w", err)
	}
	parent := make(map[int]int)
	var shims []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, ok := parentPID(pid); ok {
			parent[pid] = ppid
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if strings.Contains(filepath.Base(args[0]), "containerd-shim") && slices.Contains(args, address) {
			shims = append(shims, pid)
		}
	}

	var found []int
	for _, shim := range shims {
		for pid, ppid := range parent {
			if ppid == shim {
				found = append(found, pid)
			}
		}
		found = append(found, shim)
	}
	return found, nil
}

// parentPID reads a process's parent from /proc/<pid>/stat.
func parentPID(pid int) (int, bool) {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, false
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && line == "" {
		return 0, false
	}
	// The command name in parentheses may hold blanks; the fields after
	// its closing parenthesis are state and parent pid.
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return 0, false
	}
	fields := strings.Fields(line[i+1:])
	if len(fields) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(fields[1])
	return ppid, err == nil
}

// SharedDir creates dir and makes it a shared mount of its own, so that
// mounts made below it later also appear in a plugin that binds it with
// rslave, as an automounted /cvmfs does on a systemd host. The mount and
// everything mounted below it are undone when the test ends.
func SharedDir(t *testing.T, dir string) {
	t.Helper()

	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount(dir, dir, "", syscall.MS_BIND, ""); err != nil {
		t.Fatalf("failed to bind %s onto itself: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := UnmountAll(dir); err != nil {
			t.Errorf("failed to unmount %s: %v", dir, err)
		}
	})
	if err := syscall.Mount("", dir, "", syscall.MS_SHARED|syscall.MS_REC, ""); err != nil {
		t.Fatalf("failed to make %s a shared mount: %v", dir, err)
	}
}

// BindMount mounts src on target, as a host would mount a repository
// below /cvmfs, and unmounts it when the test ends unless Unmount did.
func BindMount(t *testing.T, src, target string) {
	t.Helper()

	if err := os.MkdirAll(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount(src, target, "", syscall.MS_BIND, ""); err != nil {
		t.Fatalf("failed to bind %s on %s: %v", src, target, err)
	}
	t.Cleanup(func() {
		if err := UnmountAll(target); err != nil {
			t.Errorf("failed to unmount %s: %v", target, err)
		}
	})
}
