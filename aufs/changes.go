package aufs

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/graphdriver"
)

// aufsChanges lists the changes an aufs writable branch makes to the
// branches below it, the way `docker diff` shows them: a path only the
// branch has is added, one the branches below show too is modified, a
// ".wh." whiteout deletes, and the parent directory of an added, modified
// or deleted path is modified. A directory the branch only passes through,
// unchanged in mode, size and time, is not listed. A directory that hides
// what lies below it (it holds ".wh..wh..opq", or a whiteout of it lies
// beside it), and every directory under it, also deletes each entry the
// branches below show in it that it does not have itself.
//
// This is what Docker's aufs driver meant to report; it differs from it
// where that one listed an opaque marker as the deletion of a file named
// ".wh..opq" and left out what the opaque directory hid.
func aufsChanges(upper string, lowers union) ([]graphdriver.Change, error) {
	var (
		changes []graphdriver.Change
		listed  = make(map[string]bool) // paths listed as added or modified
		deleted = make(map[string]bool)
		// hiding holds the branch's directories that hide what lies
		// below them: nothing under them comes from the lower branches.
		hiding = make(map[string]bool)
	)
	underHiding := func(path string) bool {
		for p := path; p != "/"; {
			p = filepath.Dir(p)
			if hiding[p] {
				return true
			}
		}
		return false
	}
	add := func(path string, kind graphdriver.ChangeKind) {
		if !listed[path] {
			changes = append(changes, graphdriver.Change{Path: path, Kind: kind})
			listed[path] = true
		}
	}
	del := func(path string) {
		if !deleted[path] {
			changes = append(changes, graphdriver.Change{Path: path, Kind: graphdriver.ChangeDelete})
			deleted[path] = true
		}
	}
	markParent := func(path string) {
		if parent := filepath.Dir(path); parent != "/" {
			add(parent, graphdriver.ChangeModify)
		}
	}
	deleteHidden := func(rel, path string) error {
		names, err := lowers.names(rel)
		if err != nil {
			return err
		}
		for _, name := range names {
			if _, err := os.Lstat(filepath.Join(upper, rel, name)); isNotExist(err) {
				gone := filepath.Join(path, name)
				markParent(gone)
				del(gone)
			}
		}
		return nil
	}

	if exists(filepath.Join(upper, opaqueMarker)) {
		hiding["/"] = true
		if err := deleteHidden(".", "/"); err != nil {
			return nil, fmt.Errorf("failed to list changes of %s: %w", upper, err)
		}
	}
	err := filepath.WalkDir(upper, func(full string, entry fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(upper, full)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		name := entry.Name()
		path := "/" + filepath.ToSlash(rel)
		dirRel := filepath.Dir(rel)

		switch {
		case dirRel == "." && slices.Contains(aufsMeta, name), name == opaqueMarker:
			return skip(entry)
		case strings.HasPrefix(name, whMetaPrefix):
			// aufs's temporary entries.
			return skip(entry)
		case strings.HasPrefix(name, whPrefix):
			target := strings.TrimPrefix(name, whPrefix)
			if exists(filepath.Join(upper, dirRel, target)) {
				// Deleted and made again in this branch: the entry
				// itself says what changed.
				return nil
			}
			gone := filepath.Join(filepath.Dir(path), target)
			markParent(gone)
			del(gone)
			return nil
		}

		fi, err := entry.Info()
		if err != nil {
			return err
		}
		// A path the branches below show was there before: it is
		// modified, also where the branch hides the rest of its
		// directory, as a comparison of the two trees finds.
		belowInfo, below, err := lowers.lookup(rel)
		if err != nil {
			return err
		}
		marked := fi.IsDir() &&
			(exists(filepath.Join(full, opaqueMarker)) || exists(filepath.Join(upper, dirRel, whPrefix+name)))
		replaced := fi.IsDir() && (marked || underHiding(path))
		if replaced {
			hiding[path] = true
		}
		switch {
		case !below:
			markParent(path)
			add(path, graphdriver.ChangeAdd)
		case fi.IsDir() && belowInfo.IsDir() && !marked && sameDirMeta(fi, belowInfo):
		default:
			markParent(path)
			add(path, graphdriver.ChangeModify)
		}
		if replaced && below && belowInfo.IsDir() {
			return deleteHidden(rel, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("failed to list changes of %s: %w", upper, err)
	}
	sort.SliceStable(changes, func(i, j int) bool { return changes[i].Path < changes[j].Path })
	return changes, nil
}

// skip returns what a walk does with an entry it leaves out.
func skip(entry fs.DirEntry) error {
	if entry.IsDir() {
		return filepath.SkipDir
	}
	return nil
}

// exists reports whether path exists, without following a final symbolic
// link.
func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// sameDirMeta reports whether two directories look unchanged, the test
// Docker applies before it lists a directory as modified.
func sameDirMeta(a, b fs.FileInfo) bool {
	if a.Mode() != b.Mode() || a.Size() != b.Size() {
		return false
	}
	ta, tb := a.ModTime(), b.ModTime()
	return ta.Unix() == tb.Unix() && (ta.Nanosecond() == tb.Nanosecond() || ta.Nanosecond() == 0 || tb.Nanosecond() == 0)
}
