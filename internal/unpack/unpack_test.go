package unpack

import (
	"archive/tar"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// entry declares one tar entry of a test layer.
type entry struct {
	name     string
	typ      byte
	mode     int64
	uid, gid int
	data     string
	link     string
	major    int64
	minor    int64
	xattrs   map[string]string
}

func file(name, data string) entry {
	return entry{name: name, typ: tar.TypeReg, mode: 0o644, data: data}
}
func dir(name string) entry { return entry{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, target string) entry {
	return entry{name: name, typ: tar.TypeSymlink, mode: 0o777, link: target}
}
func hardlink(name, target string) entry {
	return entry{name: name, typ: tar.TypeLink, mode: 0o644, link: target}
}

// layerTar writes entries as a layer tar.
func layerTar(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{
			Name: e.name, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.gid,
			Size: int64(len(e.data)), Linkname: e.link, Devmajor: e.major, Devminor: e.minor,
			Format: tar.FormatPAX,
		}
		if len(e.xattrs) > 0 {
			hdr.PAXRecords = map[string]string{}
			for k, v := range e.xattrs {
				hdr.PAXRecords["SCHILY.xattr."+k] = v
			}
		}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.data)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// requireRoot skips a test that creates devices, changes owners or sets
// trusted.* attributes.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: unpacking creates devices and sets owners and trusted.* attributes")
	}
}

// layerDirs returns an empty layer directory and a directory beside it
// that a layer must never reach.
func layerDirs(t *testing.T) (layer, outside string) {
	t.Helper()
	base := t.TempDir()
	layer = filepath.Join(base, "layer")
	outside = filepath.Join(base, "outside")
	for _, d := range []string{layer, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("host file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return layer, outside
}

func TestUnpackOverlayFormat(t *testing.T) {
	requireRoot(t)
	layer, _ := layerDirs(t)

	tarData := layerTar(t,
		dir("etc"),
		entry{name: "etc/shadow", typ: tar.TypeReg, mode: 0o640, uid: 0, gid: 42, data: "x"},
		entry{name: "bin/ping", typ: tar.TypeReg, mode: 0o4755, data: "ping", xattrs: map[string]string{"user.test": "kept"}},
		symlink("lib", "/usr/lib"),
		symlink("etc/rel", "../bin/ping"),
		entry{name: "bin/ping2", typ: tar.TypeLink, mode: 0o4755, link: "bin/ping"},
		entry{name: "dev/null", typ: tar.TypeChar, mode: 0o666, major: 1, minor: 3},
		entry{name: "run/fifo", typ: tar.TypeFifo, mode: 0o600},
		entry{name: "home/user", typ: tar.TypeDir, mode: 0o700, uid: 1000, gid: 1000},
		file("data/.wh.gone", ""),
		dir("opq"),
		file("opq/.wh..wh..opq", ""),
		file("opq/new", "new\n"),
		entry{name: "/abs/file", typ: tar.TypeReg, mode: 0o644, data: "leading slash"},
	)
	if err := Unpack(bytes.NewReader(tarData), layer, Overlay); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		path  string
		check func(t *testing.T, p string, fi fs.FileInfo, st *syscall.Stat_t)
	}{
		{"etc/shadow", func(t *testing.T, p string, fi fs.FileInfo, st *syscall.Stat_t) {
			if fi.Mode().Perm() != 0o640 || st.Gid != 42 {
				t.Errorf("mode %v gid %d, want 0640 gid 42", fi.Mode(), st.Gid)
			}
		}},
		{"bin/ping", func(t *testing.T, p string, fi fs.FileInfo, st *syscall.Stat_t) {
			if fi.Mode()&fs.ModeSetuid == 0 {
				t.Errorf("mode %v lost setuid", fi.Mode())
			}
			buf := make([]byte, 16)
			n, err := unix.Lgetxattr(p, "user.test", buf)
			if err != nil || string(buf[:n]) != "kept" {
				t.Errorf("xattr user.test = %q, %v; want kept", buf[:n], err)
			}
		}},
		{"lib", func(t *testing.T, p string, fi fs.FileInfo, st *syscall.Stat_t) {
			if target, _ := os.Readlink(p); target != "/usr/lib" {
				t.Errorf("absolute symlink points to %q, want /usr/lib as it was", target)
			}
		}},
		{"etc/rel", func(t *testing.T, p string, fi fs.FileInfo, st *syscall.Stat_t) {
			if target, _ := os.Readlink(p); target != "../bin/ping" {
				t.Errorf("symlink points to %q", target)
			}
		}},
		{"bin/ping2", func(t *testing.T, p string, fi fs.FileInfo, st *syscall.Stat_t) {
			if st.Nlink != 2 {
				t.Errorf("hard link count %d, want 2", st.Nlink)
			}
		}},
		{"dev/null", func(t *testing.T, p string, fi fs.FileInfo, st *syscall.Stat_t) {
			if fi.Mode()&fs.ModeCharDevice == 0 || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
				t.Errorf("dev/null is %v %d,%d", fi.Mode(), unix.Major(st.Rdev), unix.Minor(st.Rdev))
			}
		}},
		{"run/fifo", func(t *testing.T, p string, fi fs.FileInfo, st *syscall.Stat_t) {
			if fi.Mode()&fs.ModeNamedPipe == 0 {
				t.Errorf("run/fifo is %v", fi.Mode())
			}
		}},
		{"home/user", func(t *testing.T, p string, fi fs.FileInfo, st *syscall.Stat_t) {
			if fi.Mode().Perm() != 0o700 || st.Uid != 1000 {
				t.Errorf("home/user is %v uid %d", fi.Mode(), st.Uid)
			}
		}},
		{"data/gone", func(t *testing.T, p string, fi fs.FileInfo, st *syscall.Stat_t) {
			if fi.Mode()&fs.ModeCharDevice == 0 || st.Rdev != 0 {
				t.Errorf("whiteout is %v rdev %d, want a character device 0/0", fi.Mode(), st.Rdev)
			}
		}},
		{"opq", func(t *testing.T, p string, fi fs.FileInfo, st *syscall.Stat_t) {
			buf := make([]byte, 4)
			n, err := unix.Lgetxattr(p, OpaqueXattr, buf)
			if err != nil || string(buf[:n]) != "y" {
				t.Errorf("%s = %q, %v; want y", OpaqueXattr, buf[:n], err)
			}
		}},
		{"opq/new", nil},
		{"abs/file", nil},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			p := filepath.Join(layer, tt.path)
			fi, err := os.Lstat(p)
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, p, fi, fi.Sys().(*syscall.Stat_t))
			}
		})
	}
	for _, marker := range []string{"data/.wh.gone", "opq/.wh..wh..opq"} {
		if _, err := os.Lstat(filepath.Join(layer, marker)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("marker %s left in an overlay-format layer: %v", marker, err)
		}
	}
}

func TestUnpackAUFSFormat(t *testing.T) {
	requireRoot(t)
	layer, _ := layerDirs(t)

	tarData := layerTar(t, file("data/.wh.gone", ""), dir("opq"), file("opq/.wh..wh..opq", ""), file("opq/new", "n"))
	if err := Unpack(bytes.NewReader(tarData), layer, AUFS); err != nil {
		t.Fatal(err)
	}
	for _, marker := range []string{"data/.wh.gone", "opq/.wh..wh..opq"} {
		fi, err := os.Lstat(filepath.Join(layer, marker))
		if err != nil || !fi.Mode().IsRegular() {
			t.Errorf("marker %s should stay a plain file in an AUFS-format layer: %v", marker, err)
		}
	}
	if _, err := unix.Lgetxattr(filepath.Join(layer, "opq"), OpaqueXattr, make([]byte, 4)); !errors.Is(err, unix.ENODATA) {
		t.Errorf("AUFS-format layer has %s on opq: %v", OpaqueXattr, err)
	}
}

// TestUnpackRefusesUnsafeEntries checks that each way out of the layer is
// refused with an UnsafeEntryError and that nothing outside is touched.
func TestUnpackRefusesUnsafeEntries(t *testing.T) {
	requireRoot(t)

	tests := []struct {
		name    string
		entries func(outside string) []entry
		refused string
	}{
		{"dot-dot path", func(string) []entry { return []entry{file("../outside/secret", "pwned")} }, "../outside/secret"},
		{"dot-dot inside path", func(string) []entry { return []entry{file("a/../../outside/new", "pwned")} }, "a/../../outside/new"},
		{"write through absolute symlink", func(outside string) []entry {
			return []entry{symlink("escape", outside), file("escape/new", "pwned")}
		}, "escape/new"},
		{"write through relative symlink", func(string) []entry {
			return []entry{symlink("escape", "../outside"), file("escape/secret", "pwned")}
		}, "escape/secret"},
		{"symlink dir then deeper path", func(outside string) []entry {
			return []entry{dir("a"), symlink("a/b", outside), dir("a/b/c")}
		}, "a/b/c"},
		{"hard link out of the layer", func(string) []entry {
			return []entry{hardlink("stolen", "../outside/secret")}
		}, "stolen"},
		{"hard link to absolute host path", func(outside string) []entry {
			return []entry{hardlink("stolen", filepath.Join(outside, "secret"))}
		}, "stolen"},
		{"hard link through symlink", func(outside string) []entry {
			return []entry{symlink("escape", outside), hardlink("stolen", "escape/secret")}
		}, "stolen"},
		{"hard link to a file not in the layer", func(string) []entry {
			return []entry{hardlink("stolen", "etc/passwd")}
		}, "stolen"},
		{"hard link to a directory", func(string) []entry {
			return []entry{dir("d"), hardlink("stolen", "d")}
		}, "stolen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			layer, outside := layerDirs(t)
			err := Unpack(bytes.NewReader(layerTar(t, tt.entries(outside)...)), layer, Overlay)

			var unsafe *UnsafeEntryError
			if !errors.As(err, &unsafe) || !errors.Is(err, ErrUnsafeEntry) {
				t.Fatalf("Unpack = %v, want an UnsafeEntryError", err)
			}
			if unsafe.Name != tt.refused {
				t.Errorf("refused entry %q, want %q (%v)", unsafe.Name, tt.refused, err)
			}
			entries, err := os.ReadDir(outside)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 {
				t.Errorf("the directory outside the layer now holds %d entries", len(entries))
			}
			data, err := os.ReadFile(filepath.Join(outside, "secret"))
			if err != nil || string(data) != "host file\n" {
				t.Errorf("file outside the layer changed: %q, %v", data, err)
			}
		})
	}
}

func TestUnpackTruncatedTar(t *testing.T) {
	layer, _ := layerDirs(t)
	data := layerTar(t, file("big", string(bytes.Repeat([]byte("x"), 4096))))
	err := Unpack(bytes.NewReader(data[:1024]), layer, AUFS)
	if err == nil {
		t.Fatal("Unpack of a cut tar succeeded")
	}
}

func TestParseWhiteoutFormat(t *testing.T) {
	for _, f := range []WhiteoutFormat{Overlay, AUFS} {
		got, err := ParseWhiteoutFormat(f.String())
		if err != nil || got != f {
			t.Errorf("ParseWhiteoutFormat(%q) = %v, %v", f, got, err)
		}
	}
	if _, err := ParseWhiteoutFormat("vfs"); err == nil {
		t.Error("ParseWhiteoutFormat(vfs) succeeded")
	}
}
