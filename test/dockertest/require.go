package dockertest

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// EnableEnv is the environment variable that turns the end-to-end tests on.
// They start daemons, mount file systems and need root, so a plain
// `go test ./...` skips them; `make test-e2e` sets it to 1.
const EnableEnv = "CVMFS_GRAPHDRIVER_E2E"

// Paths of the programs the harness runs. The docker client is the one that
// comes with the daemon: /usr/local/bin/docker, when present, is a newer
// client that comes first in PATH.
const (
	DockerCLI = "/usr/bin/docker"
	Dockerd   = "dockerd"
	Busybox   = "/bin/busybox"
)

// Enabled reports whether the end-to-end tests were asked to run.
func Enabled() bool {
	return os.Getenv(EnableEnv) == "1"
}

// Require skips the test unless the end-to-end tests were asked to run, and
// fails it when they were asked to run on a machine that cannot run them, so
// that a CI run never passes by skipping everything.
func Require(t *testing.T) {
	t.Helper()

	if !Enabled() {
		t.Skipf("end-to-end test: needs root and a Docker engine; "+
			"set %s=1 (or run `make test-e2e` as root)", EnableEnv)
	}
	if err := CheckHost(); err != nil {
		t.Fatalf("%s=1 but this machine cannot run the end-to-end tests: %v", EnableEnv, err)
	}
}

// CheckHost returns an error naming the first thing the end-to-end tests
// need that this machine lacks.
func CheckHost() error {
	if os.Geteuid() != 0 {
		return errors.New("they must run as root (they start dockerd and mount overlays)")
	}
	for _, name := range []string{Dockerd, "containerd", "runc"} {
		if _, err := exec.LookPath(name); err != nil {
			return fmt.Errorf("%s is not installed (Debian package docker.io): %w", name, err)
		}
	}
	if _, err := os.Stat(DockerCLI); err != nil {
		return fmt.Errorf("the docker client is not at %s (Debian package docker.io): %w", DockerCLI, err)
	}
	return checkStatic(Busybox)
}

// checkStatic makes sure path is a statically linked executable: a dynamic
// busybox would not start in an image that holds nothing else.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("a static busybox is needed at %s (Debian package busybox-static): %w", path, err)
	}
	defer f.Close()

	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked; install Debian package busybox-static", path)
		}
	}
	return nil
}
