package aufs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// union answers questions about the tree aufs shows for a stack of branch
// directories, top first, following the AUFS rules: ".wh.<name>" in a
// branch hides <name> in the branches below it, ".wh..wh..opq" in a
// directory hides what the branches below hold in that directory, and an
// entry that is not a directory hides whatever the branches below hold at
// its path and under it. A branch that holds both ".wh.<name>" and <name>,
// as a tar that deletes and re-creates a path leaves it, shows its own
// <name> and hides the ones below. Paths are slash-separated and relative
// to the root; "." is the root.
type union []string

// lookup returns the entry the union shows at rel, and whether there is
// one.
func (u union) lookup(rel string) (fs.FileInfo, bool, error) {
	for _, b := range u {
		fi, err := os.Lstat(filepath.Join(b, rel))
		if err == nil {
			return fi, true, nil
		}
		if !isNotExist(err) {
			return nil, false, err
		}
		hidden, err := shadows(b, rel)
		if err != nil || hidden {
			return nil, false, err
		}
	}
	return nil, false, nil
}

// names lists, sorted, the entries the union shows in directory rel.
func (u union) names(rel string) ([]string, error) {
	seen := make(map[string]bool)
	hidden := make(map[string]bool)
	var out []string
	for _, b := range u {
		dir := filepath.Join(b, rel)
		fi, err := os.Lstat(dir)
		switch {
		case isNotExist(err):
			if hid, err := shadows(b, rel); err != nil || hid {
				sort.Strings(out)
				return out, err
			}
			continue
		case err != nil:
			return nil, err
		case !fi.IsDir():
			sort.Strings(out)
			return out, nil
		}

		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		opaque := false
		var whited []string
		for _, e := range entries {
			name := e.Name()
			switch {
			case name == opaqueMarker:
				opaque = true
			case strings.HasPrefix(name, whMetaPrefix):
				// aufs's own entries, never shown.
			case strings.HasPrefix(name, whPrefix):
				whited = append(whited, strings.TrimPrefix(name, whPrefix))
			case !seen[name] && !hidden[name]:
				seen[name] = true
				out = append(out, name)
			}
		}
		for _, name := range whited {
			hidden[name] = true
		}
		if opaque {
			break
		}
		if hid, err := shadows(b, rel); err != nil || hid {
			sort.Strings(out)
			return out, err
		}
	}
	sort.Strings(out)
	return out, nil
}

// shadows reports whether branch b hides rel, and what lies under it, from
// the branches below b: by a whiteout of rel or of one of its parents, by
// an opaque marker in one of its parents, or by a parent that is not a
// directory in b. Whether b holds rel itself is the caller's business.
func shadows(b, rel string) (bool, error) {
	if rel == "." {
		return false, nil
	}
	parts := strings.Split(rel, "/")
	cur := b
	for i, p := range parts {
		for _, marker := range []string{whPrefix + p, opaqueMarker} {
			if _, err := os.Lstat(filepath.Join(cur, marker)); err == nil {
				return true, nil
			} else if !isNotExist(err) {
				return false, err
			}
		}
		if i == len(parts)-1 {
			return false, nil
		}
		cur = filepath.Join(cur, p)
		fi, err := os.Lstat(cur)
		if isNotExist(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if !fi.IsDir() {
			return true, nil
		}
	}
	return false, nil
}

// isNotExist reports whether err says a path is not there, also when one
// of its parents is not a directory.
func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}
