package overlay2

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/graphdriver"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root to mount overlay")
	}
}

// newTestDriver makes a driver in home and unmounts whatever it leaves
// mounted when the test ends.
func newTestDriver(t *testing.T, home, cvmfsRoot string) *Driver {
	t.Helper()
	d, err := New(graphdriver.InitOptions{Home: home}, cvmfsRoot)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { unmountAllBelow(home) })
	return d
}

// layerTar returns a tar holding one file.
func layerTar(t *testing.T, name, content string) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

// makeChain creates n layers, each adding one file, and returns their ids
// base first.
func makeChain(t *testing.T, d *Driver, n int) []string {
	t.Helper()
	var ids []string
	parent := ""
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("layer%03d", i)
		if err := d.Create(id, parent, graphdriver.CreateOpts{}); err != nil {
			t.Fatalf("Create layer %d: %v", i, err)
		}
		if _, err := d.ApplyDiff(id, parent, layerTar(t, fmt.Sprintf("file%03d", i), strconv.Itoa(i))); err != nil {
			t.Fatalf("ApplyDiff layer %d: %v", i, err)
		}
		ids = append(ids, id)
		parent = id
	}
	return ids
}

func TestMountOptionsFallBackToRelativePaths(t *testing.T) {
	requireRoot(t)
	// A long home path makes absolute lower paths overflow a page long
	// before 128 layers.
	home := filepath.Join(t.TempDir(), strings.Repeat("long-directory-name-", 5), "home")
	d := newTestDriver(t, home, t.TempDir())
	ids := makeChain(t, d, maxDepth+1)
	top := ids[len(ids)-1]

	chain, err := d.mountChain(top)
	if err != nil {
		t.Fatal(err)
	}
	if _, relative, err := d.mountData(top, chain, ""); err != nil || !relative {
		t.Fatalf("mountData: relative=%v err=%v, want relative paths", relative, err)
	}
	dir, err := d.Get(top, "")
	if err != nil {
		t.Fatalf("Get of a layer with %d lowers: %v", maxDepth, err)
	}
	for _, name := range []string{"file000", "file064", "file128"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s not visible through the mount: %v", name, err)
		}
	}
	if err := d.Put(top); err != nil {
		t.Fatal(err)
	}
}

func TestDepthLimit(t *testing.T) {
	requireRoot(t)
	d := newTestDriver(t, t.TempDir(), t.TempDir())
	ids := makeChain(t, d, maxDepth+1)
	err := d.Create("toodeep", ids[len(ids)-1], graphdriver.CreateOpts{})
	if err == nil || !strings.Contains(err.Error(), "at most 128") {
		t.Fatalf("Create above %d layers: got %v, want an error naming the limit", maxDepth+1, err)
	}
	if d.Exists("toodeep") {
		t.Fatal("a refused layer was left behind")
	}
}

func TestColonInHome(t *testing.T) {
	requireRoot(t)
	// dockerd puts the plugin name as typed into the home path, tag and all.
	home := filepath.Join(t.TempDir(), "cvmfs/overlay2-graphdriver:latest")
	d := newTestDriver(t, home, t.TempDir())
	ids := makeChain(t, d, 3)
	dir, err := d.Get(ids[2], "")
	if err != nil {
		t.Fatalf("Get with a colon in home: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "file000")); err != nil {
		t.Errorf("base layer file not visible: %v", err)
	}
	if err := d.Put(ids[2]); err != nil {
		t.Fatal(err)
	}
}

func TestReferenceCountsSurviveRestart(t *testing.T) {
	requireRoot(t)
	home := t.TempDir()
	d := newTestDriver(t, home, t.TempDir())
	ids := makeChain(t, d, 2)
	top := ids[1]
	for i := 0; i < 2; i++ {
		if _, err := d.Get(top, ""); err != nil {
			t.Fatal(err)
		}
	}

	// A plugin killed and restarted builds a new driver on the same home.
	d2 := newTestDriver(t, home, t.TempDir())
	merged := filepath.Join(home, top, mergedDirName)
	if err := d2.Put(top); err != nil {
		t.Fatal(err)
	}
	if m, _ := mountinfo.Mounted(merged); !m {
		t.Fatal("the first Put after a restart unmounted a layer that had two Gets")
	}
	if err := d2.Put(top); err != nil {
		t.Fatal(err)
	}
	if m, _ := mountinfo.Mounted(merged); m {
		t.Fatal("the last Put after a restart left the layer mounted")
	}
}
