package graphtest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// CheckTree compares the tree below root with the one want declares and
// reports every difference in one t.Errorf; it returns whether they match.
// It compares each path's type, mode, owner, content, symlink target, device
// numbers and hard-link sharing, and its extended attributes in the user and
// trusted namespaces (attributes of other namespaces only when want declares
// them). Paths that want does not declare must not exist. The root itself is
// not compared.
func CheckTree(t testing.TB, root string, want ...Entry) bool {
	t.Helper()
	diffs, err := treeDiffs(root, want)
	if err != nil {
		t.Errorf("failed to compare the tree at %s: %v", root, err)
		return false
	}
	if len(diffs) > 0 {
		t.Errorf("tree at %s differs from the expected one:\n\t%s", root, strings.Join(diffs, "\n\t"))
		return false
	}
	return true
}

// treeDiffs lists how the tree below root differs from want, one line per
// path.
func treeDiffs(root string, want []Entry) ([]string, error) {
	wantTree, err := buildTree(want)
	if err != nil {
		return nil, fmt.Errorf("bad expected tree: %w", err)
	}
	wantTree.canonicalLinks()
	got, err := readTree(root)
	if err != nil {
		return nil, err
	}
	return compareTrees(wantTree.nodes, got, true), nil
}

// checkSameTree compares the tree below gotRoot with the one below wantRoot,
// extended attributes left aside.
func checkSameTree(t testing.TB, wantRoot, gotRoot string) bool {
	t.Helper()

	want, err := readTree(wantRoot)
	if err != nil {
		t.Fatalf("failed to read the tree at %s: %v", wantRoot, err)
	}
	got, err := readTree(gotRoot)
	if err != nil {
		t.Errorf("failed to read the tree at %s: %v", gotRoot, err)
		return false
	}
	if diffs := compareTrees(want, got, false); len(diffs) > 0 {
		t.Errorf("tree at %s differs from the one at %s:\n\t%s",
			gotRoot, wantRoot, strings.Join(diffs, "\n\t"))
		return false
	}
	return true
}

// readTree reads every item below root without following symlinks. Regular
// files sharing an inode come back as one file, at the smallest path, and
// hard links to it.
func readTree(root string) (map[string]*node, error) {
	type inode struct{ dev, ino uint64 }

	nodes := make(map[string]*node)
	links := make(map[inode][]string)
	err := filepath.WalkDir(root, func(full string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if full == root {
			return nil
		}
		rel, err := filepath.Rel(root, full)
		if err != nil {
			return err
		}

		var st unix.Stat_t
		if err := unix.Lstat(full, &st); err != nil {
			return &fs.PathError{Op: "lstat", Path: full, Err: err}
		}
		n := &node{path: filepath.ToSlash(rel), mode: st.Mode & 0o7777, uid: int(st.Uid), gid: int(st.Gid)}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			n.typ = typeDir
		case unix.S_IFREG:
			n.typ = typeFile
			content, err := os.ReadFile(full)
			if err != nil {
				return err
			}
			n.content = string(content)
			if st.Nlink > 1 {
				key := inode{st.Dev, st.Ino}
				links[key] = append(links[key], n.path)
			}
		case unix.S_IFLNK:
			n.typ = typeSymlink
			if n.target, err = os.Readlink(full); err != nil {
				return err
			}
		case unix.S_IFCHR:
			n.typ = typeCharDevice
			n.major, n.minor = unix.Major(st.Rdev), unix.Minor(st.Rdev)
		default:
			n.typ = typeOther
		}
		if n.xattrs, err = readXattrs(full); err != nil {
			return err
		}
		nodes[n.path] = n
		return nil
	})
	if err != nil {
		return nil, err
	}

	for _, paths := range links {
		sort.Strings(paths)
		for _, p := range paths[1:] {
			nodes[p] = &node{path: p, typ: typeHardlink, target: paths[0]}
		}
	}
	return nodes, nil
}

func readXattrs(path string) (map[string]string, error) {
	size, err := unix.Llistxattr(path, nil)
	if errors.Is(err, unix.ENOTSUP) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, &fs.PathError{Op: "llistxattr", Path: path, Err: err}
	}
	buf := make([]byte, size)
	if size, err = unix.Llistxattr(path, buf); err != nil {
		return nil, &fs.PathError{Op: "llistxattr", Path: path, Err: err}
	}

	xattrs := make(map[string]string)
	for _, name := range strings.Split(string(buf[:size]), "\x00") {
		if name == "" {
			continue
		}
		size, err := unix.Lgetxattr(path, name, nil)
		if err != nil {
			return nil, fmt.Errorf("failed to read xattr %s of %s: %w", name, path, err)
		}
		value := make([]byte, size)
		if size, err = unix.Lgetxattr(path, name, value); err != nil {
			return nil, fmt.Errorf("failed to read xattr %s of %s: %w", name, path, err)
		}
		xattrs[name] = string(value[:size])
	}
	return xattrs, nil
}

// compareTrees lists the differences between two trees, one line per path
// that differs, sorted by path.
func compareTrees(want, got map[string]*node, withXattrs bool) []string {
	paths := make([]string, 0, len(want)+len(got))
	for p := range want {
		paths = append(paths, p)
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)

	// A file's metadata is compared at the first path of its hard links;
	// the message names the others, which may be the ones a reader knows.
	linked := make(map[string][]string)
	for p, n := range want {
		if n.typ == typeHardlink {
			linked[n.target] = append(linked[n.target], p)
		}
	}

	var diffs []string
	for _, p := range paths {
		w, g := want[p], got[p]
		switch {
		case g == nil:
			diffs = append(diffs, fmt.Sprintf("%s: missing, want %s", p, w))
		case w == nil:
			diffs = append(diffs, fmt.Sprintf("%s: unexpected %s", p, g))
		default:
			if d := compareNodes(w, g, withXattrs); len(d) > 0 {
				line := p + ": " + strings.Join(d, "; ")
				if links := linked[p]; len(links) > 0 {
					sort.Strings(links)
					line += " (hard-linked with " + strings.Join(links, ", ") + ")"
				}
				diffs = append(diffs, line)
			}
		}
	}
	return diffs
}

func compareNodes(w, g *node, withXattrs bool) []string {
	if w.typ != g.typ {
		return []string{fmt.Sprintf("is a %s, want a %s", g, w)}
	}

	var d []string
	switch w.typ {
	case typeHardlink:
		if w.target != g.target {
			d = append(d, fmt.Sprintf("shares its inode with %s, want %s", g.target, w.target))
		}
		// Metadata and content belong to the file the link shares.
		return d
	case typeFile:
		if len(w.content) != len(g.content) {
			d = append(d, fmt.Sprintf("size %d, want %d", len(g.content), len(w.content)))
		} else if w.content != g.content {
			d = append(d, fmt.Sprintf("content %q, want %q", clip(g.content), clip(w.content)))
		}
	case typeSymlink:
		if w.target != g.target {
			d = append(d, fmt.Sprintf("points to %q, want %q", g.target, w.target))
		}
	case typeCharDevice:
		if w.major != g.major || w.minor != g.minor {
			d = append(d, fmt.Sprintf("device %d,%d, want %d,%d", g.major, g.minor, w.major, w.minor))
		}
	}
	// A symlink's mode is always 0777 on Linux and means nothing.
	if w.typ != typeSymlink && w.mode != g.mode {
		d = append(d, fmt.Sprintf("mode %04o, want %04o", g.mode, w.mode))
	}
	if w.uid != g.uid || w.gid != g.gid {
		d = append(d, fmt.Sprintf("owner %d:%d, want %d:%d", g.uid, g.gid, w.uid, w.gid))
	}
	if withXattrs {
		d = append(d, compareXattrs(w.xattrs, g.xattrs)...)
	}
	return d
}

func compareXattrs(want, got map[string]string) []string {
	names := make(map[string]bool)
	for name := range want {
		names[name] = true
	}
	for name := range got {
		if strings.HasPrefix(name, "user.") || strings.HasPrefix(name, "trusted.") {
			names[name] = true
		}
	}
	sorted := make([]string, 0, len(names))
	for name := range names {
		sorted = append(sorted, name)
	}
	sort.Strings(sorted)

	var d []string
	for _, name := range sorted {
		w, inWant := want[name]
		g, inGot := got[name]
		switch {
		case !inGot:
			d = append(d, fmt.Sprintf("xattr %s missing, want %q", name, w))
		case !inWant:
			d = append(d, fmt.Sprintf("unexpected xattr %s=%q", name, g))
		case w != g:
			d = append(d, fmt.Sprintf("xattr %s=%q, want %q", name, g, w))
		}
	}
	return d
}

func clip(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
