package dockertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// commandTimeout bounds one docker command, so that a hung daemon fails the
// test that met it rather than the whole test binary.
const commandTimeout = 3 * time.Minute

// Result is what a docker command did.
type Result struct {
	Args     []string
	Stdout   string
	Stderr   string
	ExitCode int // -1 when the command did not run or timed out
}

// String describes the command and its outcome for a test log.
func (r Result) String() string {
	return fmt.Sprintf("docker %s: exit code %d\nstdout:\n%s\nstderr:\n%s",
		strings.Join(r.Args, " "), r.ExitCode, r.Stdout, r.Stderr)
}

// clientEnv is the environment of the docker client: the daemon's socket,
// a configuration directory of its own, and the classic builder, which
// runs RUN steps through the storage driver (BuildKit would not).
func (d *Daemon) clientEnv() []string {
	env := make([]string, 0, len(os.Environ())+3)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DOCKER_") {
			env = append(env, kv)
		}
	}
	return append(env,
		"DOCKER_HOST="+d.host,
		"DOCKER_CONFIG="+filepath.Join(d.Dir, "client"),
		"DOCKER_BUILDKIT=0",
	)
}

// Docker runs the docker client against the daemon, logs the command, and
// returns what it did. It never fails the test: the caller decides what the
// outcome means.
func (d *Daemon) Docker(t *testing.T, args ...string) Result {
	t.Helper()

	start := time.Now()
	res := d.docker(args...)
	t.Logf("docker %s: exit %d in %s", shortArgs(args), res.ExitCode, time.Since(start).Round(time.Millisecond))
	return res
}

// shortArgs joins args for a log line, cutting a script passed as one
// argument down to its first line.
func shortArgs(args []string) string {
	short := make([]string, len(args))
	for i, a := range args {
		if first, _, cut := strings.Cut(a, "\n"); cut {
			a = first + " ..."
		}
		short[i] = a
	}
	return strings.Join(short, " ")
}

// docker runs the docker client against the daemon, with a time limit.
func (d *Daemon) docker(args ...string) Result {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()

	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, DockerCLI, append([]string{"-H", d.host}, args...)...)
	cmd.Env = d.env
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()

	res := Result{Args: args, Stdout: stdout.String(), Stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		res.ExitCode = -1
		res.Stderr += fmt.Sprintf("\n(killed after %s: %v)", commandTimeout, ctx.Err())
	case errors.As(err, &exitErr):
		res.ExitCode = exitErr.ExitCode()
	default:
		res.ExitCode = -1
		res.Stderr += fmt.Sprintf("\n(did not run: %v)", err)
	}
	return res
}

// MustDocker runs a docker command that must succeed and returns its
// standard output. A failure ends the test with the command's output.
func (d *Daemon) MustDocker(t *testing.T, args ...string) string {
	t.Helper()

	res := d.Docker(t, args...)
	if res.ExitCode != 0 {
		t.Fatalf("command failed: %s", res)
	}
	return res.Stdout
}

// Import makes an image named ref from a layer tar and returns its id.
func (d *Daemon) Import(t *testing.T, tarPath, ref string) string {
	t.Helper()
	return strings.TrimSpace(d.MustDocker(t, "import", tarPath, ref))
}

// Run runs a command in a new container of image without a network, removes
// the container, and returns its standard output. The command must succeed.
func (d *Daemon) Run(t *testing.T, image string, cmd ...string) string {
	t.Helper()

	args := append([]string{"run", "--rm", "--network", "none", image}, cmd...)
	return d.MustDocker(t, args...)
}
