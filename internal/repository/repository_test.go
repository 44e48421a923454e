package repository

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/source"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/unpack"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/thinimage"
)

// testTar returns a layer tar of files with the given contents.
func testTar(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, data := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// diffID returns the diff ID of an uncompressed layer.
func diffID(data []byte) v1.Hash {
	sum := sha256.Sum256(data)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

// layerOf returns a source layer stored as stored whose diff ID is that of
// plain.
func layerOf(plain, stored []byte) source.Layer {
	return source.NewLayer(diffID(plain), int64(len(stored)), func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(stored)), nil
	})
}

func gzipped(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// requireRoot skips a test that unpacks layers: unpacking sets owners.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: unpacking a layer sets owners")
	}
}

func newTestRepo(t *testing.T, root string) Repo {
	t.Helper()
	r, err := New(root, "test.cern.ch", "layers/")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// partials returns the .partial- directories of the layer directory.
func partials(t *testing.T, r Repo) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(r.LayersDir(), PartialPrefix+"*"))
	if err != nil {
		t.Fatal(err)
	}
	return matches
}

func TestNew(t *testing.T) {
	tests := []struct {
		root, name, sub string
		wantSub         string
		wantErr         bool
	}{
		{root: "/cvmfs", name: "unpacked.cern.ch", sub: "layers/", wantSub: "layers"},
		{root: "/cvmfs", name: "unpacked.cern.ch", sub: "", wantSub: "layers"},
		{root: "/cvmfs", name: "unpacked.cern.ch", sub: "/a/b/", wantSub: "a/b"},
		{root: "cvmfs", name: "unpacked.cern.ch", sub: "layers", wantErr: true},
		{root: "/cvmfs", name: "", sub: "layers", wantErr: true},
		{root: "/cvmfs", name: "../etc", sub: "layers", wantErr: true},
		{root: "/cvmfs", name: "repo", sub: "../x", wantErr: true},
		{root: "/cvmfs", name: "repo", sub: ".", wantErr: true},
		{root: "/cvmfs", name: "repo", sub: ".thin", wantErr: true},
		{root: "/cvmfs", name: "repo", sub: "a,b", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.root+"|"+tt.name+"|"+tt.sub, func(t *testing.T) {
			r, err := New(tt.root, tt.name, tt.sub)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("New = %+v, want an error", r)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Subdirectory != tt.wantSub {
				t.Errorf("subdirectory %q, want %q", r.Subdirectory, tt.wantSub)
			}
			u, err := thinimage.ParseURL(r.LayerURL(strings.Repeat("a", 64)))
			if err != nil {
				t.Fatal(err)
			}
			if got := u.Dir(tt.root); got != r.LayerDir(strings.Repeat("a", 64)) {
				t.Errorf("URL resolves to %s, layer is at %s", got, r.LayerDir(strings.Repeat("a", 64)))
			}
		})
	}
}

func TestAddLayer(t *testing.T) {
	requireRoot(t)
	plain := testTar(t, map[string]string{"a.txt": "a\n", "dir/b.txt": "b\n"})

	tests := []struct {
		name   string
		stored []byte
	}{
		{"uncompressed", plain},
		{"gzip", gzipped(t, plain)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestRepo(t, t.TempDir())
			l := layerOf(plain, tt.stored)

			var counted countingWriter
			existed, err := r.AddLayer(context.Background(), l, unpack.AUFS, &counted)
			if err != nil || existed {
				t.Fatalf("AddLayer = %v, %v; want false, nil", existed, err)
			}
			if int(counted) != len(tt.stored) {
				t.Errorf("progress counted %d bytes, the layer has %d as stored", counted, len(tt.stored))
			}
			data, err := os.ReadFile(filepath.Join(r.LayerDir(l.DiffID.Hex), "dir/b.txt"))
			if err != nil || string(data) != "b\n" {
				t.Errorf("dir/b.txt = %q, %v", data, err)
			}
			fi, err := os.Stat(r.LayerDir(l.DiffID.Hex))
			if err != nil || fi.Mode().Perm() != layerDirMode {
				t.Errorf("layer directory mode %v, %v; want %o", fi.Mode(), err, layerDirMode)
			}

			// A second image that shares the layer finds it and leaves it.
			existed, err = r.AddLayer(context.Background(), layerOf(plain, []byte("never read")), unpack.AUFS, nil)
			if err != nil || !existed {
				t.Fatalf("second AddLayer = %v, %v; want true, nil", existed, err)
			}
			if p := partials(t, r); len(p) != 0 {
				t.Errorf("partial directories left: %v", p)
			}
		})
	}
}

type countingWriter int

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}

// failingReader returns data and then an error, as a registry connection
// dropped in the middle of a layer does.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

// TestAddLayerFailuresLeaveNothing checks that every failure while a layer
// is unpacked leaves neither the layer nor a partial directory.
func TestAddLayerFailuresLeaveNothing(t *testing.T) {
	requireRoot(t)
	big := strings.Repeat("0123456789abcdef", 64<<10) // 1 MiB
	plain := testTar(t, map[string]string{"first.txt": "first\n", "big.bin": big})
	dropped := errors.New("connection reset by peer")

	tests := []struct {
		name    string
		layer   func() source.Layer
		wantErr error
	}{
		{"dropped mid-layer", func() source.Layer {
			return source.NewLayer(diffID(plain), int64(len(plain)), func() (io.ReadCloser, error) {
				return io.NopCloser(&failingReader{data: plain[:len(plain)/2], err: dropped}), nil
			})
		}, dropped},
		{"digest mismatch", func() source.Layer {
			other := testTar(t, map[string]string{"first.txt": "other\n"})
			return source.NewLayer(diffID(plain), int64(len(other)), func() (io.ReadCloser, error) {
				return io.NopCloser(bytes.NewReader(other)), nil
			})
		}, ErrDigestMismatch},
		{"unsafe entry", func() source.Layer {
			evil := testTar(t, map[string]string{"../../escape.txt": "x"})
			return layerOf(evil, evil)
		}, unpack.ErrUnsafeEntry},
		{"open fails", func() source.Layer {
			return source.NewLayer(diffID(plain), -1, func() (io.ReadCloser, error) { return nil, dropped })
		}, dropped},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			r := newTestRepo(t, root)
			l := tt.layer()
			_, err := r.AddLayer(context.Background(), l, unpack.AUFS, nil)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("AddLayer = %v, want %v", err, tt.wantErr)
			}
			if ok, _ := r.HasLayer(l.DiffID.Hex); ok {
				t.Error("a failed layer is in place")
			}
			if p := partials(t, r); len(p) != 0 {
				t.Errorf("partial directories left: %v", p)
			}
			if _, err := os.Stat(filepath.Join(root, "escape.txt")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a file was written outside the repository: %v", err)
			}
		})
	}
}

func TestAddLayerCancelled(t *testing.T) {
	requireRoot(t)
	plain := testTar(t, map[string]string{"a": "a"})
	r := newTestRepo(t, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.AddLayer(ctx, layerOf(plain, plain), unpack.AUFS, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("AddLayer = %v, want context.Canceled", err)
	}
	if p := partials(t, r); len(p) != 0 {
		t.Errorf("partial directories left: %v", p)
	}
}

// mountTmpfs mounts a tmpfs with options at a new directory and unmounts
// it when the test ends.
func mountTmpfs(t *testing.T, options string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", options, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

func TestAddLayerDiskFull(t *testing.T) {
	root := mountTmpfs(t, "size=2m")
	r := newTestRepo(t, root)
	big := strings.Repeat("x", 3<<20)
	plain := testTar(t, map[string]string{"small.txt": "s", "big.bin": big})

	_, err := r.AddLayer(context.Background(), layerOf(plain, plain), unpack.AUFS, nil)
	if err == nil {
		t.Fatal("AddLayer of a 3 MiB layer into a 2 MiB file system succeeded")
	}
	if !strings.Contains(err.Error(), "no space left") {
		t.Errorf("error does not say the disk is full: %v", err)
	}
	if p := partials(t, r); len(p) != 0 {
		t.Errorf("partial directories left: %v", p)
	}
	if ok, _ := r.HasLayer(diffID(plain).Hex); ok {
		t.Error("a half layer is in place")
	}
}

func TestAddLayerReadOnly(t *testing.T) {
	root := mountTmpfs(t, "ro,size=1m")
	r := newTestRepo(t, root)
	plain := testTar(t, map[string]string{"a": "a"})
	_, err := r.AddLayer(context.Background(), layerOf(plain, plain), unpack.AUFS, nil)
	if err == nil || !strings.Contains(err.Error(), r.LayersDir()) {
		t.Fatalf("AddLayer into a read-only repository = %v, want an error naming %s", err, r.LayersDir())
	}
}

func TestRecordsAndGarbage(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	r := newTestRepo(t, root)
	ctx := context.Background()

	keep := testTar(t, map[string]string{"keep": "k"})
	drop := testTar(t, map[string]string{"drop": "d"})
	for _, l := range [][]byte{keep, drop} {
		if _, err := r.AddLayer(ctx, layerOf(l, l), unpack.AUFS, nil); err != nil {
			t.Fatal(err)
		}
	}
	partial := filepath.Join(r.LayersDir(), PartialPrefix+"0123456789ab-1")
	if err := os.Mkdir(partial, 0o755); err != nil {
		t.Fatal(err)
	}

	entry, err := r.LayerEntry(diffID(keep))
	if err != nil {
		t.Fatal(err)
	}
	desc := &thinimage.Descriptor{Layers: []thinimage.Layer{entry}}
	data, err := desc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := r.WriteRecord(data); err != nil {
			t.Fatal(err)
		}
	}
	records, err := r.Records()
	if err != nil || len(records) != 1 {
		t.Fatalf("Records = %d records, %v; want one", len(records), err)
	}

	g, err := r.FindGarbage()
	if err != nil {
		t.Fatal(err)
	}
	dropDir := r.LayerDir(diffID(drop).Hex)
	if g.InUse != 1 || len(g.Unused) != 1 || g.Unused[0] != dropDir || len(g.Partial) != 1 || g.Partial[0] != partial {
		t.Fatalf("FindGarbage = %+v; want %s unused and %s partial", g, dropDir, partial)
	}
	if _, err := os.Stat(dropDir); err != nil {
		t.Fatalf("a dry run removed %s: %v", dropDir, err)
	}

	if _, err := r.RemoveGarbage(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dropDir, partial} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s still there after RemoveGarbage: %v", p, err)
		}
	}
	if ok, _ := r.HasLayer(diffID(keep).Hex); !ok {
		t.Error("RemoveGarbage removed a recorded layer")
	}

	// A record that cannot be read stops gc from removing anything.
	if err := os.WriteFile(filepath.Join(r.RecordsDir(), "broken.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := r.FindGarbage(); err == nil {
		t.Error("FindGarbage with a broken record succeeded")
	}
}
