package overlay2

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/graphdriver"
)

// opaqueXattr marks a directory of an overlay layer that hides everything
// below it.
const opaqueXattr = "trusted.overlay.opaque"

// overlayChanges lists the changes an overlay upper directory makes to its
// lower directories (top first), the way `docker diff` shows them: a path
// only the upper has is added, one it also has below is modified, a whiteout
// deletes, and the parent directory of an added or deleted path is modified.
// A directory the upper only passes through, unchanged in mode, size and
// time, is not listed. An opaque directory also deletes every entry below it
// that it does not have itself.
func overlayChanges(upper string, lowers []string) ([]graphdriver.Change, error) {
	var (
		changes []graphdriver.Change
		listed  = make(map[string]bool)
		// opaque holds the upper's opaque directories: nothing below
		// them comes from the lower layers.
		opaque = make(map[string]bool)
	)
	underOpaque := func(path string) bool {
		for p := filepath.Dir(path); p != "/"; p = filepath.Dir(p) {
			if opaque[p] {
				return true
			}
		}
		return false
	}
	add := func(path string, kind graphdriver.ChangeKind) {
		if kind != graphdriver.ChangeModify || !listed[path] {
			changes = append(changes, graphdriver.Change{Path: path, Kind: kind})
		}
		listed[path] = true
	}
	markParent := func(path string) {
		if parent := filepath.Dir(path); parent != "/" && !listed[parent] {
			add(parent, graphdriver.ChangeModify)
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
		path := "/" + filepath.ToSlash(rel)
		fi, err := entry.Info()
		if err != nil {
			return err
		}

		if isWhiteout(fi) {
			markParent(path)
			add(path, graphdriver.ChangeDelete)
			return nil
		}
		var (
			below     bool
			belowInfo os.FileInfo
		)
		if !underOpaque(path) {
			below, belowInfo, err = lookupBelow(lowers, path)
			if err != nil {
				return err
			}
		}
		isOpaqueDir := fi.IsDir() && isOpaque(full)
		if isOpaqueDir {
			opaque[path] = true
		}
		if !below {
			markParent(path)
			add(path, graphdriver.ChangeAdd)
			return nil
		}
		if fi.IsDir() && belowInfo.IsDir() && !isOpaqueDir && sameDirMeta(fi, belowInfo) {
			return nil
		}
		markParent(path)
		add(path, graphdriver.ChangeModify)
		if isOpaqueDir {
			hidden, err := hiddenByOpaque(full, lowers, path)
			if err != nil {
				return err
			}
			for _, h := range hidden {
				add(h, graphdriver.ChangeDelete)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("failed to list changes of %s: %w", upper, err)
	}
	sort.SliceStable(changes, func(i, j int) bool { return changes[i].Path < changes[j].Path })
	return changes, nil
}

// hiddenByOpaque lists the entries that lower layers have in directory path
// and the opaque upper directory at full does not.
func hiddenByOpaque(full string, lowers []string, path string) ([]string, error) {
	names, err := namesBelow(lowers, path)
	if err != nil {
		return nil, err
	}
	var hidden []string
	for _, name := range names {
		if _, err := os.Lstat(filepath.Join(full, name)); errors.Is(err, fs.ErrNotExist) {
			hidden = append(hidden, filepath.Join(path, name))
		}
	}
	return hidden, nil
}

// namesBelow lists the entries of directory path visible in the union of the
// lower layers (top first), honouring their whiteouts and opaque
// directories.
func namesBelow(lowers []string, path string) ([]string, error) {
	seen := make(map[string]bool)
	var names []string
	for i, lower := range lowers {
		if hiddenAt(lowers[:i], path) {
			break
		}
		dir := filepath.Join(lower, path)
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if seen[e.Name()] {
				continue
			}
			seen[e.Name()] = true
			if fi, err := e.Info(); err == nil && isWhiteout(fi) {
				continue
			}
			names = append(names, e.Name())
		}
		if isOpaque(dir) {
			break
		}
	}
	sort.Strings(names)
	return names, nil
}

// lookupBelow reports whether path exists in the union of the lower layers,
// top first, and returns its file info there.
func lookupBelow(lowers []string, path string) (bool, os.FileInfo, error) {
	for i, lower := range lowers {
		if hiddenAt(lowers[:i], path) {
			return false, nil, nil
		}
		fi, err := os.Lstat(filepath.Join(lower, path))
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			continue
		}
		if err != nil {
			return false, nil, err
		}
		if isWhiteout(fi) {
			return false, nil, nil
		}
		return true, fi, nil
	}
	return false, nil, nil
}

// hiddenAt reports whether one of the given layers hides path from the
// layers below them: a whiteout or a non-directory at one of its ancestors,
// or an opaque ancestor directory.
func hiddenAt(layers []string, path string) bool {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for _, layer := range layers {
		cur := layer
		for _, p := range parts[:len(parts)-1] {
			cur = filepath.Join(cur, p)
			fi, err := os.Lstat(cur)
			if err != nil {
				break
			}
			if isWhiteout(fi) || !fi.IsDir() {
				return true
			}
			if isOpaque(cur) {
				return true
			}
		}
	}
	return false
}

// isWhiteout reports whether fi is an overlay whiteout: a character device
// with device number 0/0.
func isWhiteout(fi os.FileInfo) bool {
	if fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Rdev == 0
}

// isOpaque reports whether dir carries overlay's opaque mark.
func isOpaque(dir string) bool {
	buf := make([]byte, 2)
	n, err := unix.Lgetxattr(dir, opaqueXattr, buf)
	return err == nil && n == 1 && buf[0] == 'y'
}

// sameDirMeta reports whether two directories look unchanged, the test
// Docker applies before it lists a directory as modified.
func sameDirMeta(a, b os.FileInfo) bool {
	if a.Mode() != b.Mode() || a.Size() != b.Size() {
		return false
	}
	ta, tb := a.ModTime(), b.ModTime()
	return ta.Unix() == tb.Unix() && (ta.Nanosecond() == tb.Nanosecond() || ta.Nanosecond() == 0 || tb.Nanosecond() == 0)
}

// dirSize returns the apparent size of the files below dir, counting each
// hard-linked inode once.
func dirSize(dir string) (int64, error) {
	type inode struct{ dev, ino uint64 }
	seen := make(map[inode]bool)
	var size int64
	err := filepath.WalkDir(dir, func(path string, entry fs.DirEntry, err error) error {
		if err != nil {
			// A file removed while walking a running container's layer
			// is not an error.
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		fi, err := entry.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if fi.IsDir() {
			return nil
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
			key := inode{uint64(st.Dev), st.Ino}
			if seen[key] {
				return nil
			}
			seen[key] = true
		}
		size += fi.Size()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("failed to measure %s: %w", dir, err)
	}
	return size, nil
}
