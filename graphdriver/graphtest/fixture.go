package graphtest

import (
	"archive/tar"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"
)

// AUFS whiteout names, the format of layer tars on the wire.
const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)

// fixtureTime is the modification time of every tar entry WriteTar writes,
// so that the same declaration always gives the same bytes.
var fixtureTime = time.Date(2020, time.January, 1, 0, 0, 0, 0, time.UTC)

type entryOp int

const (
	opFile entryOp = iota
	opDir
	opSymlink
	opHardlink
	opCharDevice
	opChown
	opXattr
)

// Entry declares one item of a file tree: an entry of a layer tar, a file to
// create in a directory, or what a mounted layer must show. File, Dir,
// Symlink, Hardlink and CharDevice declare an item; Chown and Xattr amend one
// declared earlier in the same list; Whiteout and Opaque declare the AUFS
// marker files that delete an entry or hide what lies below a directory.
//
// Paths are slash-separated and relative to the root of the tree. Parent
// directories that a list does not declare are implied, with mode 0755 and
// owner 0:0, the way tar extractors create them. Items are owned by 0:0 until
// a Chown says otherwise. Modes are Unix permission bits, set-id and sticky
// bits included (0o4755 is a set-user-id program).
type Entry struct {
	op           entryOp
	path         string
	content      string
	target       string
	mode         uint32
	uid, gid     int
	major, minor uint32
	name, value  string
}

// File declares a regular file.
func File(path, content string, mode uint32) Entry {
	return Entry{op: opFile, path: path, content: content, mode: mode}
}

// Dir declares a directory.
func Dir(path string, mode uint32) Entry {
	return Entry{op: opDir, path: path, mode: mode}
}

// Symlink declares a symbolic link to target, which is kept as written.
func Symlink(path, target string) Entry {
	return Entry{op: opSymlink, path: path, target: target, mode: 0o777}
}

// Hardlink declares a hard link to target, a regular file declared earlier
// in the same list.
func Hardlink(path, target string) Entry {
	return Entry{op: opHardlink, path: path, target: target}
}

// CharDevice declares a character device with mode 0. A 0/0 device is how
// overlayfs marks a deleted entry in a layer directory.
func CharDevice(path string, major, minor uint32) Entry {
	return Entry{op: opCharDevice, path: path, major: major, minor: minor}
}

// Chown sets the owner of an item declared earlier in the same list.
func Chown(path string, uid, gid int) Entry {
	return Entry{op: opChown, path: path, uid: uid, gid: gid}
}

// Xattr sets an extended attribute on an item declared earlier in the same
// list.
func Xattr(path, name, value string) Entry {
	return Entry{op: opXattr, path: path, name: name, value: value}
}

// Whiteout declares the AUFS marker that deletes path from the layers below:
// an empty file named .wh.<name> beside it.
func Whiteout(p string) Entry {
	return File(path.Join(path.Dir(p), whiteoutPrefix+path.Base(p)), "", 0o644)
}

// Opaque declares the AUFS marker that hides everything the layers below
// hold in dir: an empty file named .wh..wh..opq inside it.
func Opaque(dir string) Entry {
	return File(path.Join(dir, opaqueMarker), "", 0o644)
}

type nodeType int

const (
	typeFile nodeType = iota
	typeDir
	typeSymlink
	typeHardlink
	typeCharDevice
	typeOther
)

func (t nodeType) String() string {
	switch t {
	case typeFile:
		return "regular file"
	case typeDir:
		return "directory"
	case typeSymlink:
		return "symlink"
	case typeHardlink:
		return "hard link"
	case typeCharDevice:
		return "character device"
	}
	return "special file"
}

// node is one item of a tree, declared or read from disk.
type node struct {
	path         string
	typ          nodeType
	mode         uint32
	uid, gid     int
	content      string
	target       string // symlink target, or the path a hard link shares its inode with
	major, minor uint32
	xattrs       map[string]string
}

func (n *node) String() string {
	switch n.typ {
	case typeSymlink:
		return fmt.Sprintf("symlink to %q", n.target)
	case typeHardlink:
		return fmt.Sprintf("hard link to %s", n.target)
	case typeFile:
		return fmt.Sprintf("regular file %04o %d:%d (%d bytes)", n.mode, n.uid, n.gid, len(n.content))
	case typeCharDevice:
		return fmt.Sprintf("character device %d,%d", n.major, n.minor)
	}
	return fmt.Sprintf("%s %04o %d:%d", n.typ, n.mode, n.uid, n.gid)
}

// tree is a declared file tree: its nodes by path and the order in which
// they were declared, implied parent directories first.
type tree struct {
	nodes map[string]*node
	order []string
}

func buildTree(entries []Entry) (*tree, error) {
	t := &tree{nodes: make(map[string]*node)}
	for _, e := range entries {
		p, err := cleanEntryPath(e.path)
		if err != nil {
			return nil, err
		}

		switch e.op {
		case opChown, opXattr:
			n := t.nodes[p]
			if n == nil {
				return nil, fmt.Errorf("fixture %s: path is not declared before it is amended", p)
			}
			if n.typ == typeHardlink {
				n = t.nodes[n.target]
			}
			if e.op == opChown {
				n.uid, n.gid = e.uid, e.gid
			} else {
				n.xattrs[e.name] = e.value
			}
			continue
		}

		if _, ok := t.nodes[p]; ok {
			return nil, fmt.Errorf("fixture %s: path is declared twice", p)
		}
		if err := t.addParents(p); err != nil {
			return nil, err
		}
		n := &node{path: p, mode: e.mode, content: e.content, target: e.target,
			major: e.major, minor: e.minor, xattrs: map[string]string{}}
		switch e.op {
		case opFile:
			n.typ = typeFile
		case opDir:
			n.typ = typeDir
		case opSymlink:
			n.typ = typeSymlink
		case opCharDevice:
			n.typ = typeCharDevice
		case opHardlink:
			target, err := cleanEntryPath(e.target)
			if err != nil {
				return nil, err
			}
			file := t.nodes[target]
			if file == nil || file.typ != typeFile {
				return nil, fmt.Errorf("fixture %s: hard link target %s is not a regular file declared before it",
					p, target)
			}
			n.typ, n.target = typeHardlink, target
		}
		t.add(n)
	}
	return t, nil
}

func (t *tree) add(n *node) {
	t.nodes[n.path] = n
	t.order = append(t.order, n.path)
}

func (t *tree) addParents(p string) error {
	dir := path.Dir(p)
	if dir == "." {
		return nil
	}
	if n, ok := t.nodes[dir]; ok {
		if n.typ != typeDir {
			return fmt.Errorf("fixture %s: parent %s is a %s", p, dir, n.typ)
		}
		return nil
	}
	if err := t.addParents(dir); err != nil {
		return err
	}
	t.add(&node{path: dir, typ: typeDir, mode: 0o755, xattrs: map[string]string{}})
	return nil
}

func cleanEntryPath(p string) (string, error) {
	clean := path.Clean(p)
	if p == "" || clean == "." || path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("fixture path %q is not a relative path inside the tree", p)
	}
	return clean, nil
}

// canonicalLinks rewrites every group of hard links so that the smallest
// path holds the content and the others link to it, the form readTree gives.
func (t *tree) canonicalLinks() {
	groups := make(map[string][]string)
	for p, n := range t.nodes {
		if n.typ == typeHardlink {
			groups[n.target] = append(groups[n.target], p)
		}
	}
	for file, links := range groups {
		members := append(links, file)
		sort.Strings(members)
		leader := members[0]
		if leader != file {
			held := *t.nodes[file]
			held.path = leader
			t.nodes[leader] = &held
		}
		for _, p := range members[1:] {
			t.nodes[p] = &node{path: p, typ: typeHardlink, target: leader}
		}
	}
}

// contentSize is the number of bytes of regular file content the tree
// declares, each hard-linked file counted once, and the bytes of its symlink
// targets.
func (t *tree) contentSize() (files, symlinks int64) {
	for _, n := range t.nodes {
		switch n.typ {
		case typeFile:
			files += int64(len(n.content))
		case typeSymlink:
			symlinks += int64(len(n.target))
		}
	}
	return files, symlinks
}

// WriteTar writes the entries to w as an uncompressed layer tar, in the order
// they are declared, each implied parent directory as an entry of its own
// before its first child. Whiteout and Opaque become the empty .wh. entries
// of the AUFS format; extended attributes become PAX records.
func WriteTar(w io.Writer, entries ...Entry) error {
	t, err := buildTree(entries)
	if err != nil {
		return err
	}

	tw := tar.NewWriter(w)
	for _, p := range t.order {
		n := t.nodes[p]
		hdr := &tar.Header{
			Name:    p,
			Mode:    int64(n.mode),
			Uid:     n.uid,
			Gid:     n.gid,
			ModTime: fixtureTime,
		}
		switch n.typ {
		case typeFile:
			hdr.Typeflag = tar.TypeReg
			hdr.Size = int64(len(n.content))
		case typeDir:
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
		case typeSymlink:
			hdr.Typeflag = tar.TypeSymlink
			hdr.Linkname = n.target
		case typeHardlink:
			target := t.nodes[n.target]
			hdr.Typeflag = tar.TypeLink
			hdr.Linkname = n.target
			hdr.Mode, hdr.Uid, hdr.Gid = int64(target.mode), target.uid, target.gid
		case typeCharDevice:
			hdr.Typeflag = tar.TypeChar
			hdr.Devmajor, hdr.Devminor = int64(n.major), int64(n.minor)
		}
		if len(n.xattrs) > 0 && n.typ != typeHardlink {
			hdr.Format = tar.FormatPAX
			hdr.PAXRecords = make(map[string]string, len(n.xattrs))
			for name, value := range n.xattrs {
				hdr.PAXRecords["SCHILY.xattr."+name] = value
			}
		}

		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("failed to write tar header for %s: %w", p, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			if _, err := io.WriteString(tw, n.content); err != nil {
				return fmt.Errorf("failed to write tar content of %s: %w", p, err)
			}
		}
	}
	return tw.Close()
}
