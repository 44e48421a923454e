package graphtest

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/go-archive"
	"golang.org/x/sys/unix"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the fixtures set owners and make device nodes, which needs root")
	}
}

// TestApplyMatchesDeclaration checks that every fixture of the suite, made
// on disk with Apply, is found equal to its declaration.
func TestApplyMatchesDeclaration(t *testing.T) {
	requireRoot(t)
	fixtures := map[string][]Entry{
		"base":       baseLayer(),
		"child-view": childView(),
		"thin-view":  thinImageView(),
		"image":      imageLayer(),
		// A hard link whose path sorts before its target's.
		"links": {File("z", "data", 0o640), Hardlink("a", "z"), Chown("a", 5, 6)},
	}
	for i, layer := range thinRepoLayers(overlayFormat) {
		fixtures["thin-overlay-"+string(rune('0'+i))] = layer
	}
	for i, layer := range thinRepoLayers(aufsFormat) {
		fixtures["thin-aufs-"+string(rune('0'+i))] = layer
	}
	for name, entries := range fixtures {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := Apply(dir, entries...); err != nil {
				t.Fatal(err)
			}
			CheckTree(t, dir, entries...)
		})
	}
}

// TestWriteTarMatchesDeclaration unpacks WriteTar's output with Docker's
// archive code and compares the result with the declaration.
func TestWriteTarMatchesDeclaration(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	apply := func(entries []Entry) {
		t.Helper()
		if _, err := archive.ApplyUncompressedLayer(dir, bytes.NewReader(tarOf(t, entries...)), nil); err != nil {
			t.Fatal(err)
		}
	}
	apply(baseLayer())
	CheckTree(t, dir, baseLayer()...)
	apply(childLayer())
	CheckTree(t, dir, childView()...)
}

// TestTreeDiffs breaks a tree made from a declaration in one way at a time
// and expects exactly one difference, on the broken path, that says what
// broke.
func TestTreeDiffs(t *testing.T) {
	requireRoot(t)
	declared := []Entry{
		File("etc/hostname", "host\n", 0o644),
		Xattr("etc/hostname", "user.tag", "a"),
		File("bin/tool", "tool", 0o755),
		Hardlink("bin/alias", "bin/tool"),
		Symlink("bin/sh", "tool"),
		Dir("home/user", 0o700),
		Chown("home/user", 1000, 1000),
		CharDevice("gone", 0, 0),
	}
	breaks := []struct {
		name, path, says string
		run              func(root string) error
	}{
		{"extra file", "extra", "unexpected regular file", func(root string) error {
			return os.WriteFile(filepath.Join(root, "extra"), nil, 0o644)
		}},
		{"missing file", "etc/hostname", "missing", func(root string) error {
			return os.Remove(filepath.Join(root, "etc/hostname"))
		}},
		// bin/alias sorts first, so the pair's metadata is compared there.
		{"mode", "bin/alias", "mode 0700, want 0755 (hard-linked with bin/tool)", func(root string) error {
			return os.Chmod(filepath.Join(root, "bin/tool"), 0o700)
		}},
		{"owner", "home/user", "owner 0:0, want 1000:1000", func(root string) error {
			return os.Lchown(filepath.Join(root, "home/user"), 0, 0)
		}},
		{"size", "etc/hostname", "size 6, want 5", func(root string) error {
			return os.WriteFile(filepath.Join(root, "etc/hostname"), []byte("hosts\n"), 0o644)
		}},
		{"content", "etc/hostname", `content "HOST\n", want "host\n"`, func(root string) error {
			return os.WriteFile(filepath.Join(root, "etc/hostname"), []byte("HOST\n"), 0o644)
		}},
		{"symlink target", "bin/sh", `points to "busybox", want "tool"`, func(root string) error {
			if err := os.Remove(filepath.Join(root, "bin/sh")); err != nil {
				return err
			}
			return os.Symlink("busybox", filepath.Join(root, "bin/sh"))
		}},
		{"broken hard link", "bin/tool", "want a hard link", func(root string) error {
			p := filepath.Join(root, "bin/alias")
			if err := os.Remove(p); err != nil {
				return err
			}
			if err := os.WriteFile(p, []byte("tool"), 0o755); err != nil {
				return err
			}
			return os.Chmod(p, 0o755)
		}},
		{"xattr value", "etc/hostname", `xattr user.tag="b", want "a"`, func(root string) error {
			return unix.Lsetxattr(filepath.Join(root, "etc/hostname"), "user.tag", []byte("b"), 0)
		}},
		{"extra xattr", "bin/alias", "unexpected xattr user.extra", func(root string) error {
			return unix.Lsetxattr(filepath.Join(root, "bin/tool"), "user.extra", []byte("x"), 0)
		}},
		{"type", "gone", "is a regular file 0000 0:0 (0 bytes), want a character device 0,0", func(root string) error {
			if err := os.Remove(filepath.Join(root, "gone")); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(root, "gone"), nil, 0)
		}},
	}
	for _, b := range breaks {
		t.Run(b.name, func(t *testing.T) {
			root := t.TempDir()
			if err := Apply(root, declared...); err != nil {
				t.Fatal(err)
			}
			if err := b.run(root); err != nil {
				t.Fatal(err)
			}
			diffs, err := treeDiffs(root, declared)
			if err != nil {
				t.Fatal(err)
			}
			one := len(diffs) == 1 && strings.HasPrefix(diffs[0], b.path+": ")
			if !one || !strings.Contains(diffs[0], b.says) {
				t.Errorf("differences %q, want one on %s saying %q", diffs, b.path, b.says)
			}
		})
	}
}

func TestBuildTreeRefusesBadDeclarations(t *testing.T) {
	bad := map[string][]Entry{
		"declared twice":        {File("a", "", 0o644), File("a", "", 0o644)},
		"amended before":        {Chown("a", 1, 1), File("a", "", 0o644)},
		"link to nothing":       {Hardlink("a", "b")},
		"link to a directory":   {Dir("d", 0o755), Hardlink("a", "d")},
		"file as a parent":      {File("a", "", 0o644), File("a/b", "", 0o644)},
		"absolute path":         {File("/etc/passwd", "", 0o644)},
		"path leaving the tree": {File("../x", "", 0o644)},
	}
	for name, entries := range bad {
		if _, err := buildTree(entries); err == nil {
			t.Errorf("%s: buildTree accepted it", name)
		}
	}
}

func TestDeletedOnWire(t *testing.T) {
	entries := make(map[string]tarEntry)
	for _, name := range []string{"etc/.wh.shadow", "var/.wh.cache", "opt/app/.wh..wh..opq", "opt/app/new"} {
		entries[name] = tarEntry{}
	}
	for p, want := range map[string]bool{
		"etc/shadow":          true,
		"etc/passwd":          false,
		"var/cache":           true,
		"var/cache/apt/lock":  true,
		"opt/app/old":         true,
		"opt/app/lib/old.so":  true,
		"opt/other":           false,
		"shadow":              false,
		"etc/shadow-and-more": false,
	} {
		if got := deletedOnWire(entries, p); got != want {
			t.Errorf("deletedOnWire(%s) = %v, want %v", p, got, want)
		}
	}
}
