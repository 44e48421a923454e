package dockertest

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// BinaryEnv names a prebuilt plugin binary to test instead of building one.
const BinaryEnv = "CVMFS_GRAPHDRIVER_BIN"

// PluginDir is where dockerd looks for the sockets of legacy plugins.
const PluginDir = "/run/docker/plugins"

// pluginStartTimeout bounds the wait for a new plugin to listen.
const pluginStartTimeout = 15 * time.Second

// PluginBinary returns the plugin binary to test: $CVMFS_GRAPHDRIVER_BIN if
// set, or one built from the module at moduleDir into outDir with its
// version stamped "e2e". Build once per test binary (from TestMain): every
// daemon of the run then starts the same program.
func PluginBinary(moduleDir, outDir string) (string, error) {
	if bin := os.Getenv(BinaryEnv); bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			return "", fmt.Errorf("failed to resolve %s=%s: %w", BinaryEnv, bin, err)
		}
		if _, err := os.Stat(abs); err != nil {
			return "", fmt.Errorf("plugin binary from %s: %w", BinaryEnv, err)
		}
		return abs, nil
	}

	out := filepath.Join(outDir, "cvmfs-graphdriver")
	cmd := exec.Command("go", "build", "-ldflags", "-X main.version=e2e", "-o", out, "./cmd/cvmfs-graphdriver")
	cmd.Dir = moduleDir
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("failed to build the plugin in %s: %w\n%s", moduleDir, err, msg)
	}
	return out, nil
}

// startPlugin runs the plugin binary cfg names as a legacy plugin named
// name, serving on /run/docker/plugins/<name>.sock, and waits until it
// accepts connections.
func startPlugin(cfg Config, name, stateDir, logPath string) (*Process, error) {
	if err := os.MkdirAll(PluginDir, 0o755); err != nil {
		return nil, fmt.Errorf("failed to create %s: %w", PluginDir, err)
	}
	socket := pluginSocket(name)
	if err := removeIfExists(socket); err != nil { // left by a run that was killed
		return nil, err
	}

	argv := []string{cfg.Plugin,
		"--socket", socket,
		"--cvmfs-root", cfg.CVMFSRoot,
		"--state-dir", stateDir,
		"--log-level", "debug",
	}
	argv = append(argv, cfg.PluginArgs...)
	env := append(os.Environ(), cfg.PluginEnv...)
	p, err := StartProcess("plugin "+name, logPath, argv, env)
	if err != nil {
		return nil, err
	}

	if err := waitForSocket(p, socket, pluginStartTimeout); err != nil {
		if !p.Exited() {
			err = errors.Join(err, p.Stop(pluginStopGrace))
		}
		return nil, fmt.Errorf("plugin %s did not start: %w\nplugin log:\n%s",
			name, err, p.logTail(logTailOnFailure))
	}
	return p, nil
}

// pluginSocket is the socket path dockerd dials for a legacy plugin.
func pluginSocket(name string) string {
	return filepath.Join(PluginDir, name+".sock")
}

// waitForSocket waits until a unix socket accepts a connection, giving up
// early if the process that should serve it exits.
func waitForSocket(p *Process, socket string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.DialTimeout("unix", socket, time.Second)
		if err == nil {
			return conn.Close()
		}
		if p.Exited() {
			return fmt.Errorf("process exited before listening on %s: %v", socket, p.exitError())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s after %s: %w", socket, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// removeIfExists removes a file that may not be there.
func removeIfExists(path string) error {
	err := os.Remove(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("failed to remove %s: %w", path, err)
	}
	return nil
}
