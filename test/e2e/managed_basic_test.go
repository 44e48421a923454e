package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/test/dockertest"
)

// TestManagedPlugin installs the plugin as a managed plugin, the way the
// README says, and runs a regular and a thin image through it.
func TestManagedPlugin(t *testing.T) {
	cvmfsRoot := newSharedCVMFSRoot(t)
	layers := thinLayers()
	desc := publishThin(t, cvmfsRoot, layers)
	m := startManaged(t, cvmfsRoot)

	if pid := m.PluginPID(); pid == 0 {
		t.Fatalf("no plugin process after dockerd started with -s %s", m.Driver)
	}
	status := m.MustDocker(t, "info", "--format", "{{json .DriverStatus}}")
	for _, want := range []string{`["Backend","overlay2"]`, `["CernVM-FS Root","/cvmfs"]`} {
		if !strings.Contains(status, want) {
			t.Errorf("docker info driver status lacks %s: %s", want, status)
		}
	}

	t.Run("regular", func(t *testing.T) {
		importBase(t, m.Daemon)
		if got := m.Run(t, baseRef, "echo", "hello"); got != "hello\n" {
			t.Errorf("echo in a container printed %q, want %q", got, "hello\n")
		}
		checkListing(t, m.Daemon, baseRef, expectListing(t, dockertest.BusyboxLayer()))
	})

	t.Run("thin", func(t *testing.T) {
		importThin(t, m.Daemon, desc.JSON(), thinRef)
		got := m.Run(t, thinRef, "cat", "/data/a.txt", "/data/link-os")
		if want := "a from layer 1\nNAME=e2e\n"; got != want {
			t.Errorf("files read in a container of the thin image: %q, want %q", got, want)
		}
		checkListing(t, m.Daemon, thinRef, expectListing(t, layers...))
	})

	record, err := os.ReadFile(filepath.Join(m.Home, ".backend"))
	if err != nil || strings.TrimSpace(string(record)) != "overlay2" {
		t.Errorf("backend record in the home: %q, %v; want overlay2", record, err)
	}
}
