package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/test/dockertest"
)

// docker2cvmfsTimeout bounds one run of docker2cvmfs.
const docker2cvmfsTimeout = 5 * time.Minute

var (
	toolOnce sync.Once
	toolBin  string
	toolErr  error
)

// docker2cvmfsBinary builds cmd/docker2cvmfs once per test binary.
func docker2cvmfsBinary(t *testing.T) string {
	t.Helper()
	toolOnce.Do(func() {
		toolBin = filepath.Join(binDir, "docker2cvmfs")
		cmd := exec.Command("go", "build", "-o", toolBin, "./cmd/docker2cvmfs")
		cmd.Dir = moduleDir
		if out, err := cmd.CombinedOutput(); err != nil {
			toolErr = err
			t.Logf("go build ./cmd/docker2cvmfs: %s", out)
		}
	})
	if toolErr != nil {
		t.Fatalf("failed to build docker2cvmfs: %v", toolErr)
	}
	return toolBin
}

// toolResult is what one run of docker2cvmfs did.
type toolResult struct {
	args     []string
	stdout   string
	stderr   string
	exitCode int
}

func (r toolResult) String() string {
	return "docker2cvmfs " + strings.Join(r.args, " ") + ": exit " + strconv.Itoa(r.exitCode) +
		"\nstdout:\n" + r.stdout + "\nstderr:\n" + r.stderr
}

// docker2cvmfs runs the tool against the daemon d, with the credentials
// `docker login` stored for d's client.
func docker2cvmfs(t *testing.T, d *dockertest.Daemon, args ...string) toolResult {
	t.Helper()
	return docker2cvmfsEnv(t, d, filepath.Join(d.Dir, "client"), args...)
}

// docker2cvmfsEnv runs the tool against the daemon d with the registry
// credentials of the docker client configuration in dockerConfig.
func docker2cvmfsEnv(t *testing.T, d *dockertest.Daemon, dockerConfig string, args ...string) toolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), docker2cvmfsTimeout)
	defer cancel()

	cmd := exec.CommandContext(ctx, docker2cvmfsBinary(t), args...)
	cmd.Env = append(os.Environ(),
		"DOCKER_HOST=unix://"+filepath.Join(d.Dir, "docker.sock"),
		"DOCKER_CONFIG="+dockerConfig,
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	res := toolResult{args: args, stdout: stdout.String(), stderr: stderr.String()}
	if err != nil {
		res.exitCode = -1
		if exitErr, ok := err.(*exec.ExitError); ok {
			res.exitCode = exitErr.ExitCode()
		}
	}
	t.Logf("docker2cvmfs %s: exit %d in %s", strings.Join(args, " "), res.exitCode, time.Since(start).Round(time.Millisecond))
	return res
}

// mustDocker2cvmfs runs the tool and fails the test unless it succeeds.
func mustDocker2cvmfs(t *testing.T, d *dockertest.Daemon, args ...string) toolResult {
	t.Helper()
	res := docker2cvmfs(t, d, args...)
	if res.exitCode != 0 {
		t.Fatalf("command failed: %s", res)
	}
	return res
}
