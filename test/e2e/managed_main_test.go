package e2e

import (
	"path/filepath"
	"sync"
	"testing"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/test/dockertest"
)

var (
	pluginDirOnce sync.Once
	pluginDirPath string
	pluginDirErr  error
)

// pluginDir returns the managed plugin's directory, made by
// `make plugin-dir` on first use so that one build serves the whole run.
func pluginDir(t *testing.T) string {
	t.Helper()

	pluginDirOnce.Do(func() {
		pluginDirPath, pluginDirErr = dockertest.PluginDirectory(moduleDir, binDir)
	})
	if pluginDirErr != nil {
		t.Fatal(pluginDirErr)
	}
	return pluginDirPath
}

// newSharedCVMFSRoot returns an empty directory that stands in for the
// host's /cvmfs: a shared mount, so that repositories mounted below it
// while the plugin runs appear inside the plugin.
func newSharedCVMFSRoot(t *testing.T) string {
	t.Helper()

	root := filepath.Join(t.TempDir(), "cvmfs")
	dockertest.SharedDir(t, root)
	return root
}

// startManaged starts a daemon whose storage driver is the managed plugin,
// with the plugin's /cvmfs bound to cvmfsRoot.
func startManaged(t *testing.T, cvmfsRoot string, settings ...string) *dockertest.Managed {
	t.Helper()

	dockertest.Require(t)
	return dockertest.StartManaged(t, dockertest.ManagedConfig{
		PluginDir:   pluginDir(t),
		CVMFSSource: cvmfsRoot,
		Settings:    settings,
	})
}
