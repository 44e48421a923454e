package dockertest

import (
	"archive/tar"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testTar returns a tar of headers, each regular file holding its name as
// content, owned by the user the test runs as, so that it unpacks without
// root.
func testTar(t *testing.T, hdrs ...tar.Header) []byte {
	t.Helper()

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		h.Uid, h.Gid = os.Getuid(), os.Getgid()
		h.ModTime = fixtureTime
		var data []byte
		if h.Typeflag == tar.TypeReg {
			data = []byte(h.Name)
			h.Size = int64(len(data))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestUnpackAsIngest(t *testing.T) {
	layerTar := testTar(t,
		tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o700},
		tar.Header{Name: "d/suid", Typeflag: tar.TypeReg, Mode: 0o4755},
		tar.Header{Name: "d/hard", Typeflag: tar.TypeLink, Linkname: "d/suid"},
		tar.Header{Name: "d/abs", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"},
		tar.Header{Name: "d/.wh.gone", Typeflag: tar.TypeReg, Mode: 0o600},
		tar.Header{Name: "o/.wh..wh..opq", Typeflag: tar.TypeReg, Mode: 0o644},
	)
	dir := filepath.Join(t.TempDir(), "layer")
	if err := UnpackAsIngest(bytes.NewReader(layerTar), dir); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		path string
		mode fs.FileMode
	}{
		{"d", fs.ModeDir | 0o700},
		{"d/suid", fs.ModeSetuid | 0o755},
		{"d/hard", fs.ModeSetuid | 0o755},
		{"d/abs", fs.ModeSymlink | 0o777},
		{"d/.wh.gone", 0o600},
		{"o", fs.ModeDir | 0o755},
		{"o/.wh..wh..opq", 0o644},
	}
	for _, tt := range tests {
		fi, err := os.Lstat(filepath.Join(dir, tt.path))
		if err != nil {
			t.Error(err)
			continue
		}
		if fi.Mode() != tt.mode {
			t.Errorf("%s has mode %s, want %s", tt.path, fi.Mode(), tt.mode)
		}
	}
	if target, err := os.Readlink(filepath.Join(dir, "d/abs")); err != nil || target != "/etc/passwd" {
		t.Errorf("d/abs points to %q (%v), want /etc/passwd", target, err)
	}
	a, errA := os.Stat(filepath.Join(dir, "d/suid"))
	b, errB := os.Stat(filepath.Join(dir, "d/hard"))
	if errA != nil || errB != nil || !os.SameFile(a, b) {
		t.Errorf("d/hard is not a hard link of d/suid (%v, %v)", errA, errB)
	}
}

func TestUnpackAsIngestRefusesEscapes(t *testing.T) {
	tests := []struct {
		name string
		hdrs []tar.Header
		want string
	}{
		{
			name: "dot-dot name",
			hdrs: []tar.Header{{Name: "../outside/x", Typeflag: tar.TypeReg, Mode: 0o644}},
			want: "leaves the layer",
		},
		{
			name: "absolute name",
			hdrs: []tar.Header{{Name: "/outside/x", Typeflag: tar.TypeReg, Mode: 0o644}},
			want: "leaves the layer",
		},
		{
			name: "hard link out of the layer",
			hdrs: []tar.Header{{Name: "x", Typeflag: tar.TypeLink, Linkname: "../outside/secret"}},
			want: "hard link target",
		},
		{
			name: "through a symlink out of the layer",
			hdrs: []tar.Header{
				{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "../outside"},
				{Name: "l/x", Typeflag: tar.TypeReg, Mode: 0o644},
			},
			want: "l/x",
		},
		{
			name: "device",
			hdrs: []tar.Header{{Name: "c", Typeflag: tar.TypeChar}},
			want: "not supported",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmp := t.TempDir()
			outside := filepath.Join(tmp, "outside")
			if err := os.Mkdir(outside, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(outside, "secret"), nil, 0o600); err != nil {
				t.Fatal(err)
			}

			err := UnpackAsIngest(bytes.NewReader(testTar(t, tt.hdrs...)), filepath.Join(tmp, "layer"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("UnpackAsIngest() = %v, want an error mentioning %q", err, tt.want)
			}
			entries, err := os.ReadDir(outside)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 {
				t.Errorf("unpacking wrote %d entries next to the layer, want none", len(entries)-1)
			}
		})
	}
}
