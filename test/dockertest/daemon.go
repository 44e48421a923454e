package dockertest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Timeouts of the daemon's life cycle.
const (
	// dockerdStartTimeout covers dockerd's own retries of a plugin socket
	// (about 16 s) with room to spare.
	dockerdStartTimeout = 60 * time.Second
	// dockerdStopGrace covers dockerd's shutdown, which gives running
	// containers 15 s to stop.
	dockerdStopGrace = 30 * time.Second
	pluginStopGrace  = 10 * time.Second
)

// Names: every daemon of a run is "cvmfse2e" and 8 random hex digits, its
// directory /tmp/cvmfse2e-<hex>.
const (
	namePrefix        = "cvmfse2e"
	nameRandomBytes   = 4
	daemonDirTemplate = "/tmp/" + namePrefix + "-%s"
)

// logTailOnFailure is how much of each log a failed test shows.
const logTailOnFailure = 48 << 10

// Config says what a daemon runs with.
type Config struct {
	// Plugin is the path of the plugin binary. When set, a plugin instance
	// of its own is started and dockerd uses it as its storage driver.
	Plugin string
	// CVMFSRoot is the plugin's --cvmfs-root.
	CVMFSRoot string
	// PluginArgs are more flags for the plugin, and PluginEnv more
	// environment variables (NAME=VALUE) for it.
	PluginArgs []string
	PluginEnv  []string
	// StorageDriver names a built-in driver ("vfs") for a daemon without
	// plugin, used to check the harness itself.
	StorageDriver string
}

// Daemon is a private dockerd, and its plugin if it has one.
type Daemon struct {
	// Dir holds everything the daemon and its plugin write.
	Dir string
	// DataRoot is dockerd's --data-root.
	DataRoot string
	// Driver is the storage driver name: the plugin's name, or the
	// built-in driver.
	Driver string
	// Home is the directory dockerd gives the storage driver.
	Home string

	name    string // the plugin's name, and the containerd namespace
	host    string
	env     []string
	dockerd *Process
	plugin  *Process
}

// Start runs a fresh daemon for the test and registers its teardown with
// t.Cleanup. It fails the test if the daemon does not come up.
func Start(t *testing.T, cfg Config) *Daemon {
	t.Helper()

	token, dir := newDaemonDir(t)
	d := &Daemon{
		Dir:      dir,
		DataRoot: filepath.Join(dir, "data"),
		Driver:   cfg.StorageDriver,
		name:     namePrefix + token,
		host:     "unix://" + filepath.Join(dir, "docker.sock"),
	}
	t.Cleanup(func() { d.teardown(t) })

	if cfg.Plugin != "" {
		d.Driver = d.name
	}
	if d.Driver == "" {
		t.Fatal("dockertest.Config needs a Plugin or a StorageDriver")
	}
	d.Home = filepath.Join(d.DataRoot, d.Driver)
	d.env = d.clientEnv()

	for _, sub := range []string{"data", "exec", "state", "client"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatalf("failed to lay out daemon directory: %v", err)
		}
	}
	// An empty configuration keeps a host's /etc/docker/daemon.json out.
	if err := os.WriteFile(filepath.Join(dir, "daemon.json"), []byte("{}\n"), 0o644); err != nil {
		t.Fatalf("failed to write daemon configuration: %v", err)
	}

	if cfg.Plugin != "" {
		p, err := startPlugin(cfg, d.Driver, filepath.Join(dir, "state"), filepath.Join(dir, "plugin.log"))
		if err != nil {
			t.Fatal(err)
		}
		d.plugin = p
	}

	if err := d.startDockerd(t); err != nil {
		t.Fatal(err)
	}
	return d
}

// newDaemonDir creates /tmp/cvmfse2e-<hex> with a random token of fixed
// length, so that no daemon directory's name is a prefix of another's.
func newDaemonDir(t *testing.T) (token, dir string) {
	t.Helper()

	for range 10 {
		b := make([]byte, nameRandomBytes)
		if _, err := rand.Read(b); err != nil {
			t.Fatalf("failed to pick a daemon name: %v", err)
		}
		token = hex.EncodeToString(b)
		dir = fmt.Sprintf(daemonDirTemplate, token)
		err := os.Mkdir(dir, 0o711)
		if err == nil {
			return token, dir
		}
		if !errors.Is(err, fs.ErrExist) {
			t.Fatalf("failed to create daemon directory: %v", err)
		}
	}
	t.Fatal("failed to find a free daemon directory name")
	return "", ""
}

// DockerdArgs returns the command line, program first, of a private
// dockerd named name that listens on host and keeps its files below dir:
// its configuration dir/daemon.json, its exec-root and pid file, and its
// data-root dataRoot. It touches no network setting of the machine. The
// caller adds the storage driver and whatever else it needs.
func DockerdArgs(dir, dataRoot, host, name string) []string {
	return []string{Dockerd,
		"--config-file", filepath.Join(dir, "daemon.json"),
		"--data-root", dataRoot,
		"--exec-root", filepath.Join(dir, "exec"),
		"-H", host,
		"--pidfile", filepath.Join(dir, "docker.pid"),
		"--iptables=false", "--ip-masq=false", "--bridge=none",
		// A containerd that the host may run is shared between daemons;
		// a namespace of their own keeps their containers apart.
		"--containerd-namespace", name,
		"--containerd-plugins-namespace", name + "-plugins",
	}
}

// startDockerd starts dockerd and waits until it answers `docker info`
// with the expected storage driver.
func (d *Daemon) startDockerd(t *testing.T) error {
	t.Helper()

	argv := append(DockerdArgs(d.Dir, d.DataRoot, d.host, d.name), "--experimental", "-s", d.Driver)
	logPath := filepath.Join(d.Dir, "dockerd.log")
	p, err := StartProcess("dockerd "+filepath.Base(d.Dir), logPath, argv, os.Environ())
	if err != nil {
		return err
	}
	d.dockerd = p

	start := time.Now()
	deadline := start.Add(dockerdStartTimeout)
	for {
		res := d.docker("info", "--format", "{{.Driver}}")
		if res.ExitCode == 0 {
			if got := strings.TrimSpace(res.Stdout); got != d.Driver {
				return fmt.Errorf("dockerd runs storage driver %q, want %q", got, d.Driver)
			}
			t.Logf("dockerd %s (pid %d) with storage driver %s answered after %s",
				d.Dir, p.Pid(), d.Driver, time.Since(start).Round(time.Millisecond))
			return nil
		}
		if p.Exited() {
			return fmt.Errorf("dockerd exited during start: %v", p.exitError())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dockerd did not answer `docker info` within %s: %s", dockerdStartTimeout, res.Stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Logs returns the ends of the dockerd and plugin logs.
func (d *Daemon) Logs() string {
	var b strings.Builder
	if d.dockerd != nil {
		fmt.Fprintf(&b, "---- dockerd log (%s) ----\n%s\n", d.dockerd.logPath, d.dockerd.logTail(logTailOnFailure))
	}
	if d.plugin != nil {
		fmt.Fprintf(&b, "---- plugin log (%s) ----\n%s\n", d.plugin.logPath, d.plugin.logTail(logTailOnFailure))
	}
	return b.String()
}

// teardown undoes everything Start did, in order: dockerd (so that it can
// still call the plugin while it shuts down), the plugin, the mounts below
// the daemon directory, the plugin socket, the directory. It fails the test
// if a mount survives, and keeps the directory then.
func (d *Daemon) teardown(t *testing.T) {
	var errs []error
	if d.dockerd != nil {
		errs = append(errs, d.dockerd.Stop(dockerdStopGrace))
	}
	if d.plugin != nil {
		errs = append(errs, d.plugin.Stop(pluginStopGrace))
		errs = append(errs, removeIfExists(pluginSocket(d.Driver)))
	}
	if err := errors.Join(errs...); err != nil {
		t.Errorf("daemon teardown: %v", err)
	}
	// A panicking test is only marked failed after its cleanups ran, so
	// its logs are not shown; the panic's own trace is.
	if t.Failed() && (d.dockerd != nil || d.plugin != nil) {
		t.Logf("logs of the daemon in %s:\n%s", d.Dir, d.Logs())
	}

	if left, err := MountsUnder(d.Dir); err == nil && len(left) > 0 {
		t.Logf("mounts left by dockerd and the plugin after they stopped: %s", strings.Join(left, ", "))
	}
	if err := UnmountAll(d.Dir); err != nil {
		t.Errorf("daemon teardown: %v", err)
	}
	left, err := MountsUnder(d.Dir)
	if err != nil {
		t.Errorf("daemon teardown: %v", err)
		return
	}
	if len(left) > 0 {
		t.Errorf("daemon teardown: mounts left below %s, directory kept: %s", d.Dir, strings.Join(left, ", "))
		return
	}
	if err := os.RemoveAll(d.Dir); err != nil {
		t.Errorf("daemon teardown: failed to remove %s: %v", d.Dir, err)
	}
}
