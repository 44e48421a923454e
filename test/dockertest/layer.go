package dockertest

import (
	"path"
	"sort"
	"strings"
)

// Kind is the type of one entry of a layer fixture.
type Kind int

const (
	// KindDir is a directory.
	KindDir Kind = iota
	// KindFile is a regular file.
	KindFile
	// KindSymlink is a symbolic link.
	KindSymlink
	// KindWhiteout deletes the entry of that name from the layers below.
	KindWhiteout
	// KindOpaque is a directory that hides whatever the layers below hold
	// at its path.
	KindOpaque
)

// Default permission bits of fixture entries whose Mode is zero.
const (
	defaultDirMode  = 0o755
	defaultFileMode = 0o644
)

// Entry is one path of a layer fixture.
type Entry struct {
	// Path is slash-separated and relative to the layer root ("bin/sh").
	Path string
	Kind Kind
	// Mode holds the permission bits; zero means 0755 for directories and
	// 0644 for files.
	Mode uint32
	// Data is the content of a file, unless Source is set.
	Data string
	// Source is a host file whose content a file takes (the busybox binary).
	Source string
	// Target is the target of a symlink.
	Target string
}

// Dir returns a directory entry.
func Dir(p string) Entry { return Entry{Path: p, Kind: KindDir} }

// File returns a regular file entry holding data.
func File(p, data string) Entry { return Entry{Path: p, Kind: KindFile, Data: data} }

// Symlink returns a symbolic link entry.
func Symlink(p, target string) Entry { return Entry{Path: p, Kind: KindSymlink, Target: target} }

// Whiteout returns an entry that deletes p from the layers below.
func Whiteout(p string) Entry { return Entry{Path: p, Kind: KindWhiteout} }

// Opaque returns a directory entry that hides the layers below at p.
func Opaque(p string) Entry { return Entry{Path: p, Kind: KindOpaque} }

// WithMode returns a copy of e with the permission bits set to mode.
func (e Entry) WithMode(mode uint32) Entry {
	e.Mode = mode
	return e
}

// perm returns the permission bits the entry gets.
func (e Entry) perm() uint32 {
	if e.Mode != 0 {
		return e.Mode
	}
	if e.Kind == KindDir || e.Kind == KindOpaque {
		return defaultDirMode
	}
	return defaultFileMode
}

// Layer is a declared layer: its entries, in any order. Parent directories
// that a layer does not list are made with mode 0755, as an unpacked tar
// would have them.
type Layer []Entry

// withParents returns the layer's entries with the missing parent
// directories added, sorted so that every parent comes before its children.
func (l Layer) withParents() []Entry {
	byPath := make(map[string]Entry, len(l))
	for _, e := range l {
		byPath[path.Clean(e.Path)] = e
	}
	for p := range byPath {
		for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
			if _, ok := byPath[dir]; !ok {
				byPath[dir] = Dir(dir)
			}
		}
	}

	entries := make([]Entry, 0, len(byPath))
	for p, e := range byPath {
		e.Path = p
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })
	return entries
}

// Merge returns the file tree a container sees when layers are stacked,
// base first, keyed by absolute path. It is the reference the tests hold
// a driver's mounts to: a whiteout removes the path and everything below it,
// an opaque directory removes everything below its path, and a later entry
// replaces an earlier one.
func Merge(layers ...Layer) map[string]Entry {
	tree := map[string]Entry{"/": Dir("/")}
	for _, l := range layers {
		entries := l.withParents()

		// Deletions first: within one layer they refer to the layers below.
		for _, e := range entries {
			p := "/" + e.Path
			switch e.Kind {
			case KindWhiteout:
				removeTree(tree, p, true)
			case KindOpaque:
				removeTree(tree, p, false)
			}
		}
		for _, e := range entries {
			if e.Kind == KindWhiteout {
				continue
			}
			if e.Kind == KindOpaque {
				e.Kind = KindDir
			}
			p := "/" + e.Path
			if old, ok := tree[p]; ok && old.Kind == KindDir && e.Kind != KindDir {
				removeTree(tree, p, false) // a file or link hides a whole directory
			}
			// A directory that the layers below have too merges with them
			// but shows this layer's metadata, as overlay does.
			tree[p] = e
		}
	}
	return tree
}

// removeTree deletes everything below p from tree, and p itself when self is
// set.
func removeTree(tree map[string]Entry, p string, self bool) {
	for q := range tree {
		if strings.HasPrefix(q, p+"/") || (self && q == p) {
			delete(tree, q)
		}
	}
}
