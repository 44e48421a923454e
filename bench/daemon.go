package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/test/dockertest"
)

// dockerCLI is the client that matches Debian's dockerd; a newer one may
// come first in PATH.
const dockerCLI = "/usr/bin/docker"

const (
	daemonStartTimeout = 60 * time.Second
	daemonStopGrace    = 30 * time.Second
	pluginStopGrace    = 10 * time.Second
	pluginStartTimeout = 15 * time.Second
)

// builtinDriver is Docker's own overlay2, the reference the plugin is
// compared with.
const builtinDriver = "overlay2"

// daemonConfig says what a benchmark daemon runs with.
type daemonConfig struct {
	// plugin is the plugin binary. Empty means Docker's built-in overlay2.
	plugin string
	// cvmfsRoot is the plugin's --cvmfs-root.
	cvmfsRoot string
	// insecureRegistries are host:port the daemon pulls from over plain
	// HTTP.
	insecureRegistries []string
	// netns is the network namespace dockerd runs in; nil for the host's.
	netns *netns
}

// daemon is a private dockerd, and its plugin if it has one. Its directory
// is /tmp/cvmfsbench-<8 hex digits>: names of one length, so that no data
// root is a prefix of another (runc 1.1 picks a root file system's parent
// mount by string prefix).
type daemon struct {
	cfg    daemonConfig
	dir    string
	name   string // the plugin's name and the containerd namespace
	driver string
	host   string

	dockerd *dockertest.Process
	plugin  *dockertest.Process
	// started is how long dockerd took from its start until it answered
	// `docker info`.
	started time.Duration
}

// startDaemon starts a fresh daemon. On failure nothing is left behind.
func startDaemon(cfg daemonConfig) (_ *daemon, retErr error) {
	d, err := newDaemonDir()
	if err != nil {
		return nil, err
	}
	d.cfg = cfg
	defer func() {
		if retErr != nil {
			retErr = errors.Join(retErr, d.stop())
		}
	}()

	for _, sub := range []string{"data", "exec", "state"} {
		if err := os.Mkdir(filepath.Join(d.dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("failed to lay out %s: %w", d.dir, err)
		}
	}
	if err := os.WriteFile(filepath.Join(d.dir, "daemon.json"), []byte("{}\n"), 0o644); err != nil {
		return nil, fmt.Errorf("failed to write daemon configuration: %w", err)
	}

	d.driver = builtinDriver
	if cfg.plugin != "" {
		d.driver = d.name
		if err := d.startPlugin(); err != nil {
			return nil, err
		}
	}
	if err := d.startDockerd(); err != nil {
		return nil, err
	}
	return d, nil
}

func newDaemonDir() (*daemon, error) {
	for range 10 {
		b := make([]byte, 4)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		token := hex.EncodeToString(b)
		dir := "/tmp/cvmfsbench-" + token
		err := os.Mkdir(dir, 0o711)
		if err == nil {
			return &daemon{dir: dir, name: "cvmfsbench" + token, host: "unix://" + filepath.Join(dir, "docker.sock")}, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("failed to create a daemon directory: %w", err)
		}
	}
	return nil, errors.New("failed to find a free daemon directory name")
}

func (d *daemon) pluginSocket() string {
	return filepath.Join(dockertest.PluginDir, d.name+".sock")
}

// startPlugin runs the plugin as a legacy plugin and waits until it
// listens.
func (d *daemon) startPlugin() error {
	if err := os.MkdirAll(dockertest.PluginDir, 0o755); err != nil {
		return err
	}
	socket := d.pluginSocket()
	if err := os.Remove(socket); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	argv := []string{d.cfg.plugin, "--socket", socket, "--state-dir", filepath.Join(d.dir, "state"),
		"--log-level", "info"}
	if d.cfg.cvmfsRoot != "" {
		argv = append(argv, "--cvmfs-root", d.cfg.cvmfsRoot)
	}
	p, err := dockertest.StartProcess("plugin "+d.name, filepath.Join(d.dir, "plugin.log"), argv, os.Environ())
	if err != nil {
		return err
	}
	d.plugin = p
	deadline := time.Now().Add(pluginStartTimeout)
	for {
		if c, err := net.Dial("unix", socket); err == nil {
			return c.Close()
		}
		if p.Exited() {
			return fmt.Errorf("plugin exited during start; see %s", p.LogPath())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("plugin did not listen on %s within %s", socket, pluginStartTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// restartPlugin kills the plugin with SIGKILL, as a crash would, and starts
// it again; dockerd is not told.
func (d *daemon) restartPlugin() error {
	if err := d.plugin.Kill(); err != nil {
		return err
	}
	return d.startPlugin()
}

func (d *daemon) startDockerd() error {
	argv := append(dockertest.DockerdArgs(d.dir, filepath.Join(d.dir, "data"), d.host, d.name),
		"--experimental", "-s", d.driver)
	for _, r := range d.cfg.insecureRegistries {
		argv = append(argv, "--insecure-registry", r)
	}
	start := time.Now()
	p, err := dockertest.StartProcess("dockerd "+d.name, filepath.Join(d.dir, "dockerd.log"), d.cfg.netns.wrap(argv), os.Environ())
	if err != nil {
		return err
	}
	d.dockerd = p
	deadline := start.Add(daemonStartTimeout)
	for {
		out, err := d.docker(context.Background(), "info", "--format", "{{.Driver}}")
		if err == nil {
			if got := strings.TrimSpace(out); got != d.driver {
				return fmt.Errorf("dockerd runs storage driver %q, want %q", got, d.driver)
			}
			d.started = time.Since(start)
			return nil
		}
		if p.Exited() {
			return fmt.Errorf("dockerd exited during start; see %s", p.LogPath())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dockerd did not answer within %s: %w", daemonStartTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// restartDockerd stops dockerd and starts it again on the same data root.
func (d *daemon) restartDockerd() error {
	if err := d.dockerd.Stop(daemonStopGrace); err != nil {
		return err
	}
	return d.startDockerd()
}

// docker runs the client against this daemon and returns its standard
// output; an error carries the standard error.
func (d *daemon) docker(ctx context.Context, args ...string) (string, error) {
	cmd := d.command(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err,
			strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// command returns the client command for args, not yet started.
func (d *daemon) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, dockerCLI, args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.host, "DOCKER_CONFIG="+filepath.Join(d.dir, "client"),
		"DOCKER_BUILDKIT=0")
	return cmd
}

// pluginRSS returns the plugin's resident memory in bytes.
func (d *daemon) pluginRSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.plugin.Pid()))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, err
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("no VmRSS in /proc/<pid>/status")
}

// stop undoes everything startDaemon did: dockerd, then the plugin, then
// every mount below the directory, the socket and the directory.
func (d *daemon) stop() error {
	var errs []error
	if d.dockerd != nil {
		errs = append(errs, d.dockerd.Stop(daemonStopGrace))
	}
	if d.plugin != nil {
		errs = append(errs, d.plugin.Stop(pluginStopGrace))
		if err := os.Remove(d.pluginSocket()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := dockertest.UnmountAll(d.dir); err != nil {
		errs = append(errs, err)
	}
	left, err := dockertest.MountsUnder(d.dir)
	switch {
	case err != nil:
		errs = append(errs, err)
	case len(left) > 0:
		errs = append(errs, fmt.Errorf("mounts left below %s, directory kept: %s", d.dir, strings.Join(left, ", ")))
	default:
		errs = append(errs, os.RemoveAll(d.dir))
	}
	return errors.Join(errs...)
}
