package layercheck

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/unpack"
)

func tarOf(t *testing.T, hdrs ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(h.Linkname))
		}
		data := h.Linkname
		if h.Typeflag == tar.TypeReg {
			h.Linkname = ""
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(data))
		}
	}
	tw.Close()
	return buf.Bytes()
}

func TestFromTar(t *testing.T) {
	data := tarOf(t,
		&tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755},
		&tar.Header{Name: "etc/passwd", Typeflag: tar.TypeReg, Mode: 0o644, Linkname: "root\n"},
		&tar.Header{Name: "etc/.wh.shadow", Typeflag: tar.TypeReg},
		&tar.Header{Name: "opq/", Typeflag: tar.TypeDir, Mode: 0o755},
		&tar.Header{Name: "opq/.wh..wh..opq", Typeflag: tar.TypeReg},
		&tar.Header{Name: "bin/sh", Typeflag: tar.TypeSymlink, Linkname: "busybox"},
		&tar.Header{Name: "etc/hard", Typeflag: tar.TypeLink, Linkname: "etc/passwd"},
	)
	tests := []struct {
		format unpack.WhiteoutFormat
		want   map[string]Type
		opaque bool
	}{
		{unpack.Overlay, map[string]Type{"etc": Dir, "etc/passwd": File, "etc/shadow": Whiteout, "opq": Dir, "bin/sh": Symlink, "etc/hard": File}, true},
		{unpack.AUFS, map[string]Type{"etc": Dir, "etc/passwd": File, "etc/.wh.shadow": File, "opq": Dir, "opq/.wh..wh..opq": File, "bin/sh": Symlink, "etc/hard": File}, false},
	}
	for _, tt := range tests {
		t.Run(tt.format.String(), func(t *testing.T) {
			got, implied, err := FromTar(bytes.NewReader(data), tt.format)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Errorf("listing has %d entries, want %d: %v", len(got), len(tt.want), got)
			}
			for p, typ := range tt.want {
				if got[p].Type != typ {
					t.Errorf("%s is %q, want %q", p, got[p].Type, typ)
				}
			}
			if got["opq"].Opaque != tt.opaque {
				t.Errorf("opq opaque = %v, want %v", got["opq"].Opaque, tt.opaque)
			}
			if !implied["bin"] {
				t.Error("bin is not implied")
			}
		})
	}
}

func TestCompare(t *testing.T) {
	base := Listing{
		"etc":        {Type: Dir, Perm: 0o755},
		"etc/passwd": {Type: File, Perm: 0o644, Size: 5},
		"bin/sh":     {Type: Symlink, Target: "busybox"},
		"gone":       {Type: Whiteout},
		"opq":        {Type: Dir, Perm: 0o755, Opaque: true},
	}
	implied := map[string]bool{"bin": true}
	copyOf := func(l Listing) Listing {
		c := Listing{"bin": {Type: Dir, Perm: 0o700}}
		for k, v := range l {
			c[k] = v
		}
		return c
	}

	tests := []struct {
		name   string
		change func(Listing)
		want   []string
	}{
		{"same", func(Listing) {}, nil},
		{"missing", func(l Listing) { delete(l, "etc/passwd") }, []string{"etc/passwd missing"}},
		{"leftover whiteout", func(l Listing) { l["etc/.wh.shadow"] = Entry{Type: File} }, []string{"etc/.wh.shadow leftover whiteout file"}},
		{"unexpected", func(l Listing) { l["extra"] = Entry{Type: File} }, []string{"extra unexpected"}},
		{"size", func(l Listing) { e := l["etc/passwd"]; e.Size = 4; l["etc/passwd"] = e }, []string{"etc/passwd size"}},
		{"mode", func(l Listing) { e := l["etc/passwd"]; e.Perm = 0o600; l["etc/passwd"] = e }, []string{"etc/passwd permissions"}},
		{"owner", func(l Listing) { e := l["etc/passwd"]; e.UID = 1; l["etc/passwd"] = e }, []string{"etc/passwd owner"}},
		{"target", func(l Listing) { l["bin/sh"] = Entry{Type: Symlink, Target: "/bin/bash"} }, []string{"bin/sh target"}},
		{"type", func(l Listing) { l["gone"] = Entry{Type: File} }, []string{"gone type"}},
		{"opaque lost", func(l Listing) { l["opq"] = Entry{Type: Dir, Perm: 0o755} }, []string{"opq opaque"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := copyOf(base)
			tt.change(got)
			var problems []string
			for _, p := range Compare(base, implied, got, unpack.Overlay) {
				problems = append(problems, p.Path+" "+p.What)
				if p.String() == "" {
					t.Error("empty problem description")
				}
			}
			if strings.Join(problems, "|") != strings.Join(tt.want, "|") {
				t.Errorf("problems %q, want %q", problems, tt.want)
			}
		})
	}
}

func TestFromDir(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "a/b"), 0o750)
	os.WriteFile(filepath.Join(dir, "a/b/f"), []byte("abc"), 0o640)
	os.Symlink("/abs/target", filepath.Join(dir, "a/link"))
	os.Chmod(filepath.Join(dir, "a"), os.ModeSticky|0o777)

	got, err := FromDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if e := got["a/b/f"]; e.Type != File || e.Size != 3 || e.Perm != 0o640 {
		t.Errorf("a/b/f = %+v", e)
	}
	if e := got["a/link"]; e.Type != Symlink || e.Target != "/abs/target" {
		t.Errorf("a/link = %+v", e)
	}
	if e := got["a"]; e.Perm != 0o1777 {
		t.Errorf("a has mode %o, want 1777", e.Perm)
	}
}
