package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/test/dockertest"
)

// TestDockerInfoStatus checks what `docker info` shows of the plugin: the
// backend, the facts it detected about the backing file system, the
// CernVM-FS root it serves layers from, and how many thin layers it holds.
func TestDockerInfoStatus(t *testing.T) {
	cvmfsRoot := newCVMFSRoot(t)
	desc := publishThin(t, cvmfsRoot, thinLayers())
	d := startWithPlugin(t, cvmfsRoot)

	status := driverStatus(t, d)
	for _, tt := range []struct{ key, want string }{
		{"Backend", "overlay2"},
		{"Supports d_type", "true"},
		{"CernVM-FS Root", cvmfsRoot},
		{"Thin Layers", "0"},
	} {
		if got, ok := status[tt.key]; !ok || got != tt.want {
			t.Errorf("docker info shows %s %q (present: %t), want %q", tt.key, got, ok, tt.want)
		}
	}
	if got := status["Backing Filesystem"]; got == "" || strings.HasPrefix(got, "unknown") {
		t.Errorf("docker info shows Backing Filesystem %q, want the name of the file system of %s", got, d.Home)
	}
	if got := status["Native Overlay Diff"]; got != "true" && got != "false" {
		t.Errorf("docker info shows Native Overlay Diff %q, want true or false", got)
	}

	importBase(t, d)
	importThin(t, d, desc.JSON(), thinRef)
	// A container of the thin image adds layers above the thin layer, which
	// are not thin themselves.
	d.Run(t, thinRef, "true")
	if got := driverStatus(t, d)["Thin Layers"]; got != "1" {
		t.Errorf("docker info shows Thin Layers %q after importing one thin image and a regular one, want \"1\"", got)
	}
}

// driverStatus returns the Status lines the storage driver gives
// `docker info`, by name. It fails the test if a name comes twice.
func driverStatus(t *testing.T, d *dockertest.Daemon) map[string]string {
	t.Helper()

	out := d.MustDocker(t, "info", "--format", "{{json .DriverStatus}}")
	var lines [][2]string
	if err := json.Unmarshal([]byte(out), &lines); err != nil {
		t.Fatalf("failed to read the driver status from %q: %v", out, err)
	}
	t.Logf("driver status: %q", lines)
	status := make(map[string]string, len(lines))
	for _, l := range lines {
		if _, dup := status[l[0]]; dup {
			t.Errorf("docker info shows %s twice: %q", l[0], lines)
		}
		status[l[0]] = l[1]
	}
	return status
}
