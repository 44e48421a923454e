package aufs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/thinimage"
)

// Repository layers in the overlay format mark a deleted entry with a 0/0
// character device and an opaque directory with trusted.overlay.opaque=y.
// aufs knows neither, so for each such layer the backend builds a local
// branch, placed right above it, holding AUFS whiteouts that mean the same
// (see the package documentation). The branches of one thin layer are
// built once, the first time its repository layers can be read, and belong
// to that thin layer: what an opaque directory hides depends on the layers
// below it.

// Overlay extended attributes.
const (
	overlayXattrPrefix = "trusted.overlay."
	overlayOpaque      = "trusted.overlay.opaque"
	overlayRedirect    = "trusted.overlay.redirect"
)

// Names inside a thin layer's directory, thin/<id>.
const (
	whiteoutsDirName    = "whiteouts"      // whiteouts/<index>: the local branches
	whiteoutsRecordName = "whiteouts.json" // which indexes have one
)

// whiteoutMode is the mode of the whiteout files the backend writes, the
// mode of the whiteouts aufs writes.
const whiteoutMode = 0o444

// whiteoutRecord lists, by descriptor index, the repository layers of a
// thin layer that have a local whiteout branch.
type whiteoutRecord struct {
	Layers []int `json:"layers"`
}

// has reports whether the repository layer with the given index has a local
// branch. A nil record has none.
func (r *whiteoutRecord) has(index int) bool {
	return r != nil && slices.Contains(r.Layers, index)
}

func (d *Driver) whiteoutDir(thinID string, index int) string {
	return filepath.Join(d.thinDir(thinID), whiteoutsDirName, strconv.Itoa(index))
}

// readWhiteouts returns the whiteout record of thin layer id, or nil when
// the branches were not built yet.
func (d *Driver) readWhiteouts(id string) (*whiteoutRecord, error) {
	data, err := os.ReadFile(filepath.Join(d.thinDir(id), whiteoutsRecordName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read the whiteout record of thin layer %s: %w", id, err)
	}
	var rec whiteoutRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("corrupt whiteout record of thin layer %s: %w", id, err)
	}
	return &rec, nil
}

// lockedEnsureWhiteouts builds the whiteout branches of thin layer id under
// that layer's lock, so that two containers starting at once build them
// once.
func (d *Driver) lockedEnsureWhiteouts(id string) error {
	s := d.state(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	return d.ensureWhiteouts(id)
}

// ensureWhiteouts builds the whiteout branches of thin layer id unless they
// are built. Every repository layer is scanned once, base first, so that
// each branch is built against the tree below its layer as aufs will show
// it. A layer holding an overlay feature aufs cannot honour fails the call
// with an error naming it. The caller holds the thin layer's lock and has
// checked that the repository layers are there.
func (d *Driver) ensureWhiteouts(id string) (retErr error) {
	if rec, err := d.readWhiteouts(id); err != nil || rec != nil {
		return err
	}
	thin, err := d.readThin(id)
	if err != nil {
		return err
	}

	tmp, err := os.MkdirTemp(d.thinDir(id), tempPrefix+whiteoutsDirName+"-")
	if err != nil {
		return fmt.Errorf("failed to build whiteout branches of thin layer %s: %w", id, err)
	}
	defer func() {
		if retErr != nil {
			os.RemoveAll(tmp)
		}
	}()

	rec := whiteoutRecord{Layers: []int{}}
	var below union // what lies below the layer being scanned, top first
	top := thinimage.TopFirst(thin.resolved())
	for i := len(top) - 1; i >= 0; i-- {
		l := top[i]
		marks, err := scanOverlayMarks(l.Dir)
		if err != nil {
			return layerMarkError(id, l, err)
		}
		if marks.empty() {
			below = append(union{l.Dir}, below...)
			continue
		}
		wdir := filepath.Join(tmp, strconv.Itoa(l.Index))
		if err := buildWhiteoutBranch(wdir, l.Dir, below, marks); err != nil {
			return fmt.Errorf("thin image layer %s: failed to honour the overlay whiteouts of %s: %w", id, l.URL, err)
		}
		rec.Layers = append(rec.Layers, l.Index)
		below = append(union{wdir, l.Dir}, below...)
	}
	sort.Ints(rec.Layers)

	final := filepath.Join(d.thinDir(id), whiteoutsDirName)
	if err := os.RemoveAll(final); err != nil {
		return fmt.Errorf("failed to replace whiteout branches of thin layer %s: %w", id, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("failed to build whiteout branches of thin layer %s: %w", id, err)
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("failed to encode whiteout record of thin layer %s: %w", id, err)
	}
	if err := writeFileAtomic(filepath.Join(d.thinDir(id), whiteoutsRecordName), data); err != nil {
		return fmt.Errorf("failed to record whiteout branches of thin layer %s: %w", id, err)
	}
	return nil
}

// overlayMarks are the overlay whiteouts of one repository layer, as paths
// relative to its root.
type overlayMarks struct {
	deletes []string // 0/0 character devices: the entries they delete
	opaques []string // directories marked opaque
}

func (m overlayMarks) empty() bool { return len(m.deletes) == 0 && len(m.opaques) == 0 }

// unsupportedMarkError reports an overlay feature in a repository layer that
// has no AUFS equivalent.
type unsupportedMarkError struct {
	path string // relative to the layer's root
	what string
}

func (e *unsupportedMarkError) Error() string {
	where := "/"
	if e.path != "." {
		where += filepath.ToSlash(e.path)
	}
	return fmt.Sprintf("%s at %s", e.what, where)
}

// scanOverlayMarks walks a repository layer and collects its overlay
// whiteouts. It reads directory entries, the mode of character devices and
// the attributes of directories only; on CernVM-FS all of that is catalog
// metadata, and no file content is fetched.
func scanOverlayMarks(dir string) (overlayMarks, error) {
	var m overlayMarks
	err := filepath.WalkDir(dir, func(path string, entry fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		switch {
		case entry.Type()&fs.ModeCharDevice != 0:
			fi, err := entry.Info()
			if err != nil {
				return err
			}
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Rdev == 0 {
				m.deletes = append(m.deletes, rel)
			}
		case entry.IsDir():
			opaque, err := getXattr(path, overlayOpaque)
			if err != nil {
				return err
			}
			switch opaque {
			case "":
			case "y":
				m.opaques = append(m.opaques, rel)
			case "x":
				return &unsupportedMarkError{path: rel, what: "an overlay directory with whiteouts in extended attributes (trusted.overlay.opaque=x)"}
			}
			if redirect, err := getXattr(path, overlayRedirect); err != nil {
				return err
			} else if redirect != "" {
				return &unsupportedMarkError{path: rel, what: "a renamed overlay directory (trusted.overlay.redirect)"}
			}
		}
		return nil
	})
	if err != nil {
		var unsupported *unsupportedMarkError
		if errors.As(err, &unsupported) {
			return m, err
		}
		return m, fmt.Errorf("failed to scan %s for overlay whiteouts: %w", dir, err)
	}
	return m, nil
}

// layerMarkError says which repository layer of thin layer id could not be
// scanned, and for a feature aufs cannot honour, what to do about it.
func layerMarkError(id string, l thinimage.ResolvedLayer, err error) error {
	layer := fmt.Sprintf("layer %d of the thin image (digest %s, %s)", l.Index+1, shortDigest(l.Digest), l.URL)
	var unsupported *unsupportedMarkError
	if errors.As(err, &unsupported) {
		return fmt.Errorf("thin image layer %s: %s holds %v, which the %s backend cannot honour; publish the layer with AUFS whiteouts (as cvmfs_server ingest does) or use the overlay2 backend",
			id, layer, err, Name)
	}
	return fmt.Errorf("thin image layer %s: %s: %w", id, layer, err)
}

// shortDigest shortens a digest for messages the way docker does: the
// first 12 hex digits, without the algorithm.
func shortDigest(digest string) string {
	if _, hex, ok := strings.Cut(digest, ":"); ok {
		digest = hex
	}
	if len(digest) > 12 {
		return digest[:12]
	}
	return digest
}

// buildWhiteoutBranch fills wdir with the AUFS whiteouts that make layer,
// lying on top of below, show what its overlay whiteouts say.
func buildWhiteoutBranch(wdir, layer string, below union, m overlayMarks) error {
	w := &whiteoutWriter{root: wdir, layer: layer, below: below}
	if err := w.mkdir("."); err != nil {
		return err
	}
	for _, del := range m.deletes {
		if err := w.whiteout(del); err != nil {
			return err
		}
	}
	sort.Strings(m.opaques)
	for _, dir := range m.opaques {
		// The copy of the directory also keeps its opaque attribute out
		// of sight: aufs shows the attributes of the uppermost copy.
		if err := w.mkdir(dir); err != nil {
			return err
		}
		if err := w.hideBelow(dir); err != nil {
			return err
		}
	}
	return w.setDirTimes()
}

// whiteoutWriter writes one whiteout branch.
type whiteoutWriter struct {
	root  string   // the branch being written
	layer string   // the repository layer it sits above
	below union    // the branches below that layer, top first
	dirs  []string // directories created, parents first
}

// hideBelow whites out every entry the branches below have in dir that the
// repository layer does not have, and recurses into the directories both
// have, so that the layer's dir shows its own tree only.
func (w *whiteoutWriter) hideBelow(dir string) error {
	names, err := w.below.names(dir)
	if err != nil {
		return err
	}
	for _, name := range names {
		rel := filepath.Join(dir, name)
		fi, err := os.Lstat(filepath.Join(w.layer, rel))
		if isNotExist(err) {
			if err := w.whiteout(rel); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			continue
		}
		if bfi, ok, err := w.below.lookup(rel); err != nil {
			return err
		} else if ok && bfi.IsDir() {
			if err := w.hideBelow(rel); err != nil {
				return err
			}
		}
	}
	return nil
}

// whiteout writes the AUFS whiteout of rel, creating its parent directories
// as copies of the repository layer's.
func (w *whiteoutWriter) whiteout(rel string) error {
	parent := filepath.Dir(rel)
	if err := w.mkdir(parent); err != nil {
		return err
	}
	path := filepath.Join(w.root, parent, whPrefix+filepath.Base(rel))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, whiteoutMode)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to make whiteout %s: %w", rel, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("failed to make whiteout %s: %w", rel, err)
	}
	return os.Chmod(path, whiteoutMode)
}

// mkdir creates directory rel and its parents in the branch, each a copy of
// the repository layer's: aufs shows a directory with the mode, owner and
// attributes of its uppermost copy. Overlay's own attributes are left out.
func (w *whiteoutWriter) mkdir(rel string) error {
	target := filepath.Join(w.root, rel)
	if _, err := os.Lstat(target); err == nil {
		return nil
	}
	if rel != "." {
		if err := w.mkdir(filepath.Dir(rel)); err != nil {
			return err
		}
	}
	src := filepath.Join(w.layer, rel)
	fi, err := os.Lstat(src)
	if err != nil {
		return fmt.Errorf("failed to copy directory %s: %w", rel, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || !fi.IsDir() {
		return fmt.Errorf("failed to copy directory %s: not a directory in %s", rel, w.layer)
	}
	if err := os.Mkdir(target, 0o700); err != nil {
		return err
	}
	if err := os.Lchown(target, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if err := os.Chmod(target, fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
		return err
	}
	if err := copyXattrs(src, target, func(name string) bool { return !strings.HasPrefix(name, overlayXattrPrefix) }); err != nil {
		return fmt.Errorf("failed to copy the attributes of directory %s: %w", rel, err)
	}
	w.dirs = append(w.dirs, rel)
	return nil
}

// setDirTimes gives every created directory the times of the repository
// layer's, once nothing more is created in them.
func (w *whiteoutWriter) setDirTimes() error {
	for i := len(w.dirs) - 1; i >= 0; i-- {
		rel := w.dirs[i]
		if err := copyTimes(filepath.Join(w.layer, rel), filepath.Join(w.root, rel)); err != nil {
			return fmt.Errorf("failed to set the times of %s: %w", rel, err)
		}
	}
	return nil
}

// getXattr returns the value of attribute name of path, or "" when path has
// none or its file system keeps no attributes.
func getXattr(path, name string) (string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(path, name, buf)
		switch {
		case err == nil:
			return string(buf[:n]), nil
		case errors.Is(err, unix.ENODATA), errors.Is(err, unix.ENOTSUP):
			return "", nil
		case errors.Is(err, unix.ERANGE) && len(buf) < 1<<16:
			buf = make([]byte, 2*len(buf))
		default:
			return "", &fs.PathError{Op: "lgetxattr " + name, Path: path, Err: err}
		}
	}
}

// copyXattrs copies the extended attributes of src that keep says to keep
// onto dst.
func copyXattrs(src, dst string, keep func(name string) bool) error {
	size, err := unix.Llistxattr(src, nil)
	if errors.Is(err, unix.ENOTSUP) || size == 0 {
		return nil
	}
	if err != nil {
		return &fs.PathError{Op: "llistxattr", Path: src, Err: err}
	}
	buf := make([]byte, size)
	if size, err = unix.Llistxattr(src, buf); err != nil {
		return &fs.PathError{Op: "llistxattr", Path: src, Err: err}
	}
	for _, name := range strings.Split(string(buf[:size]), "\x00") {
		if name == "" || !keep(name) {
			continue
		}
		value, err := getXattr(src, name)
		if err != nil {
			return err
		}
		if err := unix.Lsetxattr(dst, name, []byte(value), 0); err != nil {
			return &fs.PathError{Op: "lsetxattr " + name, Path: dst, Err: err}
		}
	}
	return nil
}

// copyTimes gives dst the access and modification times of src, without
// following symbolic links.
func copyTimes(src, dst string) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return err
	}
	times := []unix.Timespec{st.Atim, st.Mtim}
	return unix.UtimesNanoAt(unix.AT_FDCWD, dst, times, unix.AT_SYMLINK_NOFOLLOW)
}
