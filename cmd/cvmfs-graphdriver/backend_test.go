package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/aufs"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/graphdriver"
)

// TestAufsBackendWithoutAufs selects the aufs backend by name on a kernel
// without aufs: the constructor fails with one sentence that says so and
// points to overlay2, and hands back no driver.
func TestAufsBackendWithoutAufs(t *testing.T) {
	if aufs.Supported() == nil {
		t.Skip("the kernel supports aufs")
	}
	newDriver, err := lookupBackend("aufs")
	if err != nil {
		t.Fatalf("--backend aufs: %v", err)
	}
	d, err := newDriver(graphdriver.InitOptions{Home: filepath.Join(t.TempDir(), "aufs")}, t.TempDir(), nil)
	if d != nil {
		t.Errorf("the constructor returned a driver (%v) with its error", d)
	}
	if !errors.Is(err, aufs.ErrNotSupported) {
		t.Fatalf("the constructor failed with %v, want an error matching aufs.ErrNotSupported", err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "the kernel does not support aufs (") ||
		!strings.HasSuffix(msg, "; use the overlay2 backend") || strings.Contains(msg, "\n") {
		t.Errorf("the constructor failed with %q, want one sentence ending in the advice to use overlay2", msg)
	}
	if _, err := os.Stat(filepath.Join(t.TempDir(), "aufs")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the failed constructor made the home")
	}
}
