// Package e2e runs the plugin under a real dockerd: images are imported,
// run, diffed, committed, built on, saved and loaded through it, with thin
// images whose layers live in a directory laid out like /cvmfs.
//
// The tests need root and a Docker engine and are skipped unless
// CVMFS_GRAPHDRIVER_E2E=1 (`make test-e2e` sets it). Each test starts
// daemons of its own through package dockertest, so they depend on no order
// and leave nothing behind.
package e2e

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/test/dockertest"
)

// moduleDir is the module root, seen from this package's directory, where
// `go test` runs the test binary.
const moduleDir = "../.."

// binDir receives the plugin binary built for this run.
var binDir string

var (
	buildOnce sync.Once
	pluginBin string
	buildErr  error
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "cvmfs-graphdriver-e2e-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "failed to create a directory for the plugin binary: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir

	return m.Run()
}

// pluginBinary returns the plugin binary under test, built on first use so
// that one build serves the whole run, and a test that needs no plugin
// (the harness self-test) runs even when the build fails.
func pluginBinary(t *testing.T) string {
	t.Helper()

	buildOnce.Do(func() {
		pluginBin, buildErr = dockertest.PluginBinary(moduleDir, binDir)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return pluginBin
}
