package overlay2

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/graphdriver"
)

// tree declares a file tree: path -> "f:<content>", "d", "l:<target>",
// "w" (an overlay whiteout) or "o" (an overlay opaque directory).
type tree map[string]string

// writeTree creates t below dir. AUFS markers are plain files, as ingest
// leaves them.
func writeTree(t *testing.T, dir string, tr tree) {
	t.Helper()
	paths := make([]string, 0, len(tr))
	for p := range tr {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		spec, full := tr[p], filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case spec == "d":
			err = os.MkdirAll(full, 0o755)
		case spec == "o":
			if err = os.MkdirAll(full, 0o755); err == nil {
				err = unix.Setxattr(full, opaqueXattr, []byte("y"), 0)
			}
		case spec == "w":
			err = unix.Mknod(full, unix.S_IFCHR, 0)
		case strings.HasPrefix(spec, "f:"):
			err = os.WriteFile(full, []byte(spec[2:]), 0o644)
		case strings.HasPrefix(spec, "l:"):
			err = os.Symlink(spec[2:], full)
		default:
			t.Fatalf("bad tree spec %q for %s", spec, p)
		}
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
}

// readTree lists dir in the declaration form of tree.
// checkContainerTree mounts layer id, checks that a container of it sees
// the tree want, and unmounts it again.
func checkContainerTree(t *testing.T, d *Driver, id string, want tree) {
	t.Helper()
	dir, err := d.Get(id, "")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got := readTree(t, dir); !reflect.DeepEqual(got, want) {
		t.Errorf("container sees\n%v\nwant\n%v", got, want)
	}
	if err := d.Put(id); err != nil {
		t.Errorf("Put: %v", err)
	}
}

func readTree(t *testing.T, dir string) tree {
	t.Helper()
	got := tree{}
	err := filepath.WalkDir(dir, func(path string, entry fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		fi, err := entry.Info()
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			got[rel] = "d"
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(path)
			got[rel] = "l:" + target
		case fi.Mode().IsRegular():
			data, _ := os.ReadFile(path)
			got[rel] = "f:" + string(data)
		default:
			got[rel] = fi.Mode().String()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// thinTar returns a layer tar holding a descriptor for layers of repo.
func thinTar(t *testing.T, repo string, digests []string) *bytes.Buffer {
	t.Helper()
	return declaredThinTar(t, repo, digests, nil)
}

// declaredThinTar is thinTar with the whiteout format of each layer
// declared as whiteouts says; an empty string declares nothing.
func declaredThinTar(t *testing.T, repo string, digests, whiteouts []string) *bytes.Buffer {
	t.Helper()
	type layer struct {
		Digest    string `json:"digest"`
		URL       string `json:"url"`
		Whiteouts string `json:"whiteouts,omitempty"`
	}
	desc := struct {
		Version string  `json:"version"`
		Origin  string  `json:"origin"`
		Layers  []layer `json:"layers"`
	}{Version: "1.0", Origin: "test"}
	for i, d := range digests {
		l := layer{Digest: d, URL: "cvmfs://" + repo + "/layers/" + d}
		if i < len(whiteouts) {
			l.Whiteouts = whiteouts[i]
		}
		desc.Layers = append(desc.Layers, l)
	}
	data, err := json.Marshal(desc)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "thin.json", Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write(data)
	tw.Close()
	return &buf
}

// runThin builds a repository of layers (base first), a thin layer naming
// them and a container layer above it, and returns the driver and the
// container layer's id.
func runThin(t *testing.T, layers []tree) (*Driver, string) {
	t.Helper()
	return runDeclaredThin(t, layers, nil)
}

// runDeclaredThin is runThin with the layers' whiteout formats declared in
// the descriptor, as declaredThinTar does.
func runDeclaredThin(t *testing.T, layers []tree, whiteouts []string) (*Driver, string) {
	t.Helper()
	d := applyThin(t, layers, whiteouts)
	if err := d.CreateReadWrite("container", "thin", graphdriver.CreateOpts{}); err != nil {
		t.Fatal(err)
	}
	return d, "container"
}

// applyThin builds a repository of layers (base first) and a thin layer
// "thin" naming them, with whiteout formats declared as declaredThinTar
// does, and returns the driver.
func applyThin(t *testing.T, layers []tree, whiteouts []string) *Driver {
	t.Helper()
	root := t.TempDir()
	const repo = "test.example.org"
	var digests []string
	for i, l := range layers {
		digest := fmt.Sprintf("%064x", i+1)
		writeTree(t, filepath.Join(root, repo, "layers", digest), l)
		digests = append(digests, digest)
	}
	d := newTestDriver(t, t.TempDir(), root)
	if err := d.Create("thin", "", graphdriver.CreateOpts{}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ApplyDiff("thin", "", declaredThinTar(t, repo, digests, whiteouts)); err != nil {
		t.Fatalf("ApplyDiff of the thin layer: %v", err)
	}
	return d
}

func TestAUFSMarkersInRepositoryLayers(t *testing.T) {
	requireRoot(t)
	tests := []struct {
		name   string
		layers []tree
		want   tree
	}{{
		name: "whiteout of a file",
		layers: []tree{
			{"a/x": "f:x", "a/y": "f:y"},
			{"a/.wh.x": "f:"},
		},
		want: tree{"a": "d", "a/y": "f:y"},
	}, {
		name: "whiteout of a directory",
		layers: []tree{
			{"dir/sub/file": "f:1", "other": "f:2"},
			{".wh.dir": "f:"},
		},
		want: tree{"other": "f:2"},
	}, {
		name: "opaque directory with entries above and below",
		layers: []tree{
			{"d/old": "f:old", "d/keep/k1": "f:k1", "d/keep/deep/z": "f:z"},
			{"d/.wh..wh..opq": "f:", "d/new": "f:new", "d/keep/k2": "f:k2"},
			{"d/top": "f:top"},
		},
		want: tree{"d": "d", "d/new": "f:new", "d/keep": "d", "d/keep/k2": "f:k2", "d/top": "f:top"},
	}, {
		name: "file deleted and re-created higher up",
		layers: []tree{
			{"f": "f:one", "g": "f:g"},
			{".wh.f": "f:"},
			{"f": "f:three"},
		},
		want: tree{"f": "f:three", "g": "f:g"},
	}, {
		name: "markers in nested directories",
		layers: []tree{
			{"a/b/c/x": "f:x", "a/b/c/y": "f:y", "a/b/q": "f:q"},
			{"a/b/c/.wh.x": "f:", "a/b/.wh.q": "f:", "a/b/c/n": "l:../q"},
		},
		want: tree{"a": "d", "a/b": "d", "a/b/c": "d", "a/b/c/y": "f:y", "a/b/c/n": "l:../q"},
	}, {
		name: "both formats in one image",
		layers: []tree{
			{"m/x": "f:x", "m/y": "f:y", "o/p": "f:p", "s/t": "f:t"},
			{"m/x": "w", "o": "o", "o/q": "f:q"},
			{"m/.wh.y": "f:", "s/.wh..wh..opq": "f:", "s/u": "f:u"},
		},
		want: tree{"m": "d", "o": "d", "o/q": "f:q", "s": "d", "s/u": "f:u"},
	}, {
		name: "deleted and re-created in the same layer replaces the directory",
		layers: []tree{
			{"d/x/old": "f:old"},
			{"d/.wh.x": "f:", "d/x/new": "f:new"},
		},
		want: tree{"d": "d", "d/x": "d", "d/x/new": "f:new"},
	}, {
		name: "both kinds of marker for one name",
		layers: []tree{
			{"m/x": "f:x", "m/y": "f:y", "d/a": "f:a", "d/b": "f:b"},
			{"m/.wh.x": "f:", "m/x": "w", "d": "o", "d/.wh..wh..opq": "f:", "d/c": "f:c"},
		},
		want: tree{"m": "d", "m/y": "f:y", "d": "d", "d/c": "f:c"},
	}, {
		name: "file deleted and re-created in the same layer",
		layers: []tree{
			{"f": "f:old", "g": "f:g"},
			{".wh.f": "f:", "f": "f:new"},
		},
		want: tree{"f": "f:new", "g": "f:g"},
	}, {
		name: "opaque root",
		layers: []tree{
			{"a": "f:a", "b/c": "f:c"},
			{".wh..wh..opq": "f:", "b/d": "f:d"},
		},
		want: tree{"b": "d", "b/d": "f:d"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, id := runThin(t, tt.layers)
			checkContainerTree(t, d, id, tt.want)
			changes, err := d.Changes(id, "thin")
			if err != nil {
				t.Fatal(err)
			}
			if len(changes) != 0 {
				t.Errorf("Changes of an untouched container: %v, want none", changes)
			}
		})
	}
}

func TestAUFSMarkersKeepDirectoryAttributes(t *testing.T) {
	requireRoot(t)
	d, id := runThin(t, []tree{
		{"a/x": "f:x"},
		{"a/.wh.x": "f:"},
	})
	repoDir := filepath.Join(d.cvmfsRoot, "test.example.org", "layers", fmt.Sprintf("%064x", 2), "a")
	if err := os.Chmod(repoDir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(repoDir, 1234, 5678); err != nil {
		t.Fatal(err)
	}
	// Whiteout layers are built once; rebuild after the change above.
	if err := os.RemoveAll(filepath.Join(d.home, "thin", whiteoutsFile)); err != nil {
		t.Fatal(err)
	}
	dir, err := d.Get(id, "")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Put(id)
	fi, err := os.Stat(filepath.Join(dir, "a"))
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != 0o750 || st.Uid != 1234 || st.Gid != 5678 {
		t.Errorf("directory a shows mode %v owner %d:%d, want the repository's 0750 1234:5678", fi.Mode().Perm(), st.Uid, st.Gid)
	}
}

func TestContainerChangesAboveAUFSMarkers(t *testing.T) {
	requireRoot(t)
	d, id := runThin(t, []tree{
		{"etc/a": "f:a", "etc/b": "f:b"},
		{"etc/.wh.b": "f:", "etc/.wh..wh..opq": "f:", "etc/a": "f:a2"},
	})
	dir, err := d.Get(id, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "etc", "new"), []byte("n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "etc", "a")); err != nil {
		t.Fatal(err)
	}
	if err := d.Put(id); err != nil {
		t.Fatal(err)
	}
	changes, err := d.Changes(id, "thin")
	if err != nil {
		t.Fatal(err)
	}
	want := []graphdriver.Change{
		{Path: "/etc", Kind: graphdriver.ChangeModify},
		{Path: "/etc/a", Kind: graphdriver.ChangeDelete},
		{Path: "/etc/new", Kind: graphdriver.ChangeAdd},
	}
	if !reflect.DeepEqual(changes, want) {
		t.Errorf("Changes = %v, want %v", changes, want)
	}
}

// TestAUFSMarkersCountAgainstDepth checks that the local whiteout layers
// count against the lower layer limit, and that going past it is an error
// naming the thin image, not a failed mount.
func TestAUFSMarkersCountAgainstDepth(t *testing.T) {
	requireRoot(t)
	// layers returns count repository layers, the last two with a marker
	// each, so that the container needs count+2 lower layers.
	layers := func(count int) []tree {
		ls := []tree{{"x": "f:x", "y": "f:y"}}
		for i := 1; i < count-2; i++ {
			ls = append(ls, tree{fmt.Sprintf("f%03d", i): "f:"})
		}
		return append(ls, tree{".wh.x": "f:"}, tree{".wh.y": "f:"})
	}

	t.Run("at the limit", func(t *testing.T) {
		d, id := runThin(t, layers(maxDepth-2))
		dir, err := d.Get(id, "")
		if err != nil {
			t.Fatalf("Get with %d lower layers: %v", maxDepth, err)
		}
		defer d.Put(id)
		for _, name := range []string{"x", "y", ".wh.x"} {
			if _, err := os.Lstat(filepath.Join(dir, name)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s is visible in the container (%v)", name, err)
			}
		}
	})

	t.Run("past the limit", func(t *testing.T) {
		d := applyThin(t, layers(maxDepth-1), nil)
		err := d.CreateReadWrite("container", "thin", graphdriver.CreateOpts{})
		if err == nil {
			t.Fatalf("a container layer with %d lower layers was created", maxDepth+1)
		}
		for _, want := range []string{"thin image in layer thin", "origin test", "needs 129 lower layers",
			"(127 from the repository, 2 local layers that honour its whiteout markers)", "at most 128"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
		if d.Exists("container") {
			t.Error("the refused container layer was left behind")
		}
	})
}

// TestDeclaredWhiteoutFormat checks that a layer the descriptor declares to
// be in overlay format is taken at its word and not walked for AUFS
// markers, while a layer declared "aufs" or not declared is.
func TestDeclaredWhiteoutFormat(t *testing.T) {
	requireRoot(t)
	// The upper layer has a marker; whether it is honoured tells whether
	// the layer was walked.
	layers := []tree{{"a": "f:a", "b": "f:b"}, {".wh.a": "f:"}}
	tests := []struct {
		name      string
		whiteouts []string
		want      tree
	}{
		{"undeclared", nil, tree{"b": "f:b"}},
		{"declared aufs", []string{"overlay", "aufs"}, tree{"b": "f:b"}},
		{"declared something else", []string{"overlay", "btrfs"}, tree{"b": "f:b"}},
		{"declared overlay", []string{"overlay", "overlay"}, tree{"a": "f:a", "b": "f:b", ".wh.a": "f:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, id := runDeclaredThin(t, layers, tt.whiteouts)
			checkContainerTree(t, d, id, tt.want)
		})
	}
}

// TestThinDepthCountsLocalLayers checks that a container's init layer above
// a thin image as deep as the limit is refused with an error that says
// where the lower layers come from.
func TestThinDepthCountsLocalLayers(t *testing.T) {
	requireRoot(t)
	layers := make([]tree, maxDepth)
	for i := range layers {
		layers[i] = tree{fmt.Sprintf("f%03d", i): "f:"}
	}
	d := applyThin(t, layers, nil)
	if err := d.CreateReadWrite("init", "thin", graphdriver.CreateOpts{}); err != nil {
		t.Fatalf("a layer with %d lower layers was refused: %v", maxDepth, err)
	}
	err := d.CreateReadWrite("container", "init", graphdriver.CreateOpts{})
	if err == nil {
		t.Fatalf("a container layer with %d lower layers was created", maxDepth+1)
	}
	want := "needs 129 lower layers (128 from the repository, 1 local layer above it) and the overlay2 backend mounts at most 128"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}
