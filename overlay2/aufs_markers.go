package overlay2

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Repository layers published with `cvmfs_server ingest` keep AUFS-style
// whiteouts as plain files: ".wh.<name>" deletes <name> from the layers
// below, and ".wh..wh..opq" makes its directory hide everything the layers
// below have there. Overlay ignores both, so mounted as they are such layers
// would show deleted files and the markers themselves.
//
// The backend honours them without writing to the repository: for every
// repository layer that has markers it builds a small local layer, placed
// directly above it among the lower directories, holding overlay whiteouts
// (character devices 0/0) for
//
//   - every marker file, so the markers never show;
//   - every entry a ".wh.<name>" marker deletes, unless the layer itself has
//     that entry again (a layer tar that deletes and re-creates a path
//     applies the deletion first, since ".wh." sorts before the name);
//   - every entry the layers below have in an opaque directory and the
//     layer itself does not, recursing into subdirectories that both have.
//
// An opaque mark on the local layer's directory cannot be used instead: it
// would hide the repository layer's own entries, which lie below it too.
// Because what an opaque directory hides depends on the layers below, the
// local layers belong to one thin layer's chain. They are built once, the
// first time the repository layers can be read, and removed with the thin
// layer.
//
// Finding the markers means walking every repository layer. The walk reads
// directories only, which CernVM-FS serves from its catalogs, but over a
// file system that fetches each directory from a server it is the one cost
// of a thin layer that grows with the image. A layer whose descriptor entry
// declares "whiteouts": "overlay" is not walked: its writer says it has no
// markers.

// AUFS marker names.
const (
	aufsWhiteoutPrefix = ".wh."
	aufsOpaqueMarker   = ".wh..wh..opq"
)

// On-disk names of the whiteout layers inside a thin layer's directory.
const (
	whiteoutsDir  = "whiteouts"      // <home>/<thin id>/whiteouts/<index>
	whiteoutsFile = "whiteouts.json" // the record of what was built
)

// whiteoutRecord lists the whiteout layers built for a thin layer, by the
// descriptor index of the repository layer each one sits above.
type whiteoutRecord struct {
	Layers map[string]string `json:"layers"` // index -> short link name
}

// layerMarkers are the AUFS markers found in one repository layer, as paths
// relative to the layer's root.
type layerMarkers struct {
	markers []string // every marker file
	deletes []string // the paths ".wh.<name>" markers delete
	opaques []string // the directories ".wh..wh..opq" markers make opaque
}

func (m layerMarkers) empty() bool { return len(m.markers) == 0 }

// scanMarkers walks a layer directory and collects its AUFS markers. It
// reads directory entries only; on CernVM-FS that is catalog metadata, and
// no file content is fetched.
func scanMarkers(dir string) (layerMarkers, error) {
	var m layerMarkers
	err := filepath.WalkDir(dir, func(path string, entry fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := entry.Name()
		if path == dir || !strings.HasPrefix(name, aufsWhiteoutPrefix) {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		m.markers = append(m.markers, rel)
		parent := filepath.Dir(rel)
		if name == aufsOpaqueMarker {
			m.opaques = append(m.opaques, parent)
		} else {
			m.deletes = append(m.deletes, filepath.Join(parent, strings.TrimPrefix(name, aufsWhiteoutPrefix)))
		}
		if entry.IsDir() {
			// A marker is a plain file; a directory named like one is
			// hidden whole.
			return fs.SkipDir
		}
		return nil
	})
	if err != nil {
		return m, fmt.Errorf("failed to scan %s for whiteout markers: %w", dir, err)
	}
	return m, nil
}

// ensureWhiteouts builds the whiteout layers of thin layer id if they are not
// built yet. chain holds the thin layer's repository layers, top first,
// already checked to be present. The caller holds the thin layer's lock.
func (d *Driver) ensureWhiteouts(id string, chain lowerChain) (retErr error) {
	dir, err := d.layerDir(id)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, whiteoutsFile)); err == nil {
		return nil
	}

	tmp, err := os.MkdirTemp(dir, tempPrefix+whiteoutsDir+"-")
	if err != nil {
		return fmt.Errorf("failed to build whiteout layers of thin layer %s: %w", id, err)
	}
	defer func() {
		if retErr != nil {
			os.RemoveAll(tmp)
		}
	}()

	rec := whiteoutRecord{Layers: make(map[string]string)}
	var below []string // what lies below the layer being scanned, top first
	for i := len(chain.entries) - 1; i >= 0; i-- {
		e := chain.entries[i]
		if e.thin == nil {
			continue
		}
		var m layerMarkers
		if !e.thin.NoMarkers {
			if m, err = scanMarkers(e.abs); err != nil {
				return fmt.Errorf("thin image layer %s: %w", id, err)
			}
		}
		if m.empty() {
			below = append([]string{e.abs}, below...)
			continue
		}
		index := strconv.Itoa(e.thin.Index)
		wdir := filepath.Join(tmp, index)
		if err := buildWhiteoutLayer(wdir, e.abs, below, m); err != nil {
			return fmt.Errorf("thin image layer %s: failed to honour the whiteout markers of %s: %w", id, e.thin.URL, err)
		}
		link, err := newLinkID()
		if err != nil {
			return err
		}
		rec.Layers[index] = link
		below = append([]string{wdir, e.abs}, below...)
	}

	final := filepath.Join(dir, whiteoutsDir)
	if err := os.RemoveAll(final); err != nil {
		return fmt.Errorf("failed to replace whiteout layers of thin layer %s: %w", id, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("failed to build whiteout layers of thin layer %s: %w", id, err)
	}
	for index, link := range rec.Layers {
		if err := replaceSymlink(filepath.Join(final, index), filepath.Join(d.home, linkDir, link)); err != nil {
			return fmt.Errorf("failed to link whiteout layer of thin layer %s: %w", id, err)
		}
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("failed to encode whiteout record of thin layer %s: %w", id, err)
	}
	if err := writeFileAtomic(filepath.Join(dir, whiteoutsFile), data); err != nil {
		return fmt.Errorf("failed to record whiteout layers of thin layer %s: %w", id, err)
	}
	return nil
}

// readWhiteouts returns the whiteout record of thin layer id, or nil when
// none was built yet.
func (d *Driver) readWhiteouts(id string) (*whiteoutRecord, error) {
	data, err := os.ReadFile(filepath.Join(d.home, id, whiteoutsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read whiteout record of thin layer %s: %w", id, err)
	}
	var rec whiteoutRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("corrupt whiteout record of thin layer %s: %w", id, err)
	}
	return &rec, nil
}

// removeWhiteoutLinks removes the short links of a thin layer's whiteout
// layers.
func (d *Driver) removeWhiteoutLinks(id string) error {
	rec, err := d.readWhiteouts(id)
	if err != nil || rec == nil {
		return err
	}
	for _, link := range rec.Layers {
		if err := os.Remove(filepath.Join(d.home, linkDir, link)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("failed to remove short link of a whiteout layer of %s: %w", id, err)
		}
	}
	return nil
}

// withWhiteouts inserts the built whiteout layers of thin layer id into
// chain, each directly above its repository layer.
func (d *Driver) withWhiteouts(id string, chain lowerChain) (lowerChain, error) {
	rec, err := d.readWhiteouts(id)
	if err != nil || rec == nil || len(rec.Layers) == 0 {
		return chain, err
	}
	out := chain
	out.entries = make([]lowerEntry, 0, len(chain.entries)+len(rec.Layers))
	for _, e := range chain.entries {
		if e.thin != nil {
			if link, ok := rec.Layers[strconv.Itoa(e.thin.Index)]; ok {
				out.entries = append(out.entries, lowerEntry{
					rel:      filepath.Join(linkDir, link),
					abs:      filepath.Join(d.home, id, whiteoutsDir, strconv.Itoa(e.thin.Index)),
					whiteout: true,
				})
			}
		}
		out.entries = append(out.entries, e)
	}
	return out, nil
}

// buildWhiteoutLayer fills wdir with the overlay whiteouts that make layer,
// lying on top of below (top first), show what its AUFS markers say.
func buildWhiteoutLayer(wdir, layer string, below []string, m layerMarkers) error {
	w := &whiteoutWriter{root: wdir, layer: layer, below: below}
	if err := w.mkdir("."); err != nil {
		return err
	}
	if err := w.fill(m); err != nil {
		return err
	}
	return w.setDirTimes()
}

// fill writes the whiteouts for the markers m.
func (w *whiteoutWriter) fill(m layerMarkers) error {
	for _, marker := range m.markers {
		if err := w.whiteout(marker); err != nil {
			return err
		}
	}
	for _, del := range m.deletes {
		fi, err := os.Lstat(filepath.Join(w.layer, del))
		switch {
		case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
			if err := w.whiteout(del); err != nil {
				return err
			}
		case err != nil:
			return err
		case fi.IsDir():
			// Deleted and re-created in the same layer: the layer's
			// directory replaces the one below instead of merging.
			if err := w.hideBelow(del); err != nil {
				return err
			}
		}
	}
	sort.Strings(m.opaques)
	for _, dir := range m.opaques {
		if err := w.hideBelow(dir); err != nil {
			return err
		}
	}
	return nil
}

// whiteoutWriter writes one whiteout layer.
type whiteoutWriter struct {
	root  string   // the whiteout layer being written
	layer string   // the repository layer it sits above
	below []string // the layers below that one, top first
	dirs  []string // directories created, parents first
}

// hideBelow whites out every entry the layers below have in dir that the
// repository layer does not have, and recurses into the subdirectories both
// have, so that the layer's dir shows only its own tree.
func (w *whiteoutWriter) hideBelow(dir string) error {
	path := "/" + filepath.ToSlash(dir)
	names, err := namesBelow(w.below, path)
	if err != nil {
		return err
	}
	for _, name := range names {
		rel := filepath.Join(dir, name)
		fi, err := os.Lstat(filepath.Join(w.layer, rel))
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			if err := w.whiteout(rel); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if !fi.IsDir() || strings.HasPrefix(name, aufsWhiteoutPrefix) {
			continue
		}
		if ok, bfi, err := lookupBelow(w.below, "/"+filepath.ToSlash(rel)); err != nil {
			return err
		} else if ok && bfi.IsDir() {
			if err := w.hideBelow(rel); err != nil {
				return err
			}
		}
	}
	return nil
}

// whiteout makes an overlay whiteout at rel, creating its parent
// directories as copies of the repository layer's.
func (w *whiteoutWriter) whiteout(rel string) error {
	if err := w.mkdir(filepath.Dir(rel)); err != nil {
		return err
	}
	err := unix.Mknod(filepath.Join(w.root, rel), unix.S_IFCHR, 0)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("failed to make whiteout %s: %w", rel, err)
	}
	return nil
}

// mkdir creates directory rel and its parents in the whiteout layer. Overlay
// shows a merged directory with the attributes of its uppermost copy, so
// each one copies the mode, owner and times of the repository layer's.
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
	if err := os.Mkdir(target, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	if err := os.Lchown(target, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if err := os.Chmod(target, fi.Mode()&(os.ModePerm|os.ModeSetuid|os.ModeSetgid|os.ModeSticky)); err != nil {
		return err
	}
	w.dirs = append(w.dirs, rel)
	return nil
}

// setDirTimes gives every created directory the times of the repository
// layer's, once nothing more is created in them.
func (w *whiteoutWriter) setDirTimes() error {
	for i := len(w.dirs) - 1; i >= 0; i-- {
		rel := w.dirs[i]
		fi, err := os.Lstat(filepath.Join(w.layer, rel))
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		times := []unix.Timespec{unix.NsecToTimespec(st.Atim.Nano()), unix.NsecToTimespec(st.Mtim.Nano())}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(w.root, rel), times, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("failed to set times of %s: %w", rel, err)
		}
	}
	return nil
}

// replaceSymlink points link at target, replacing what link was.
func replaceSymlink(target, link string) error {
	if cur, err := os.Readlink(link); err == nil && cur == target {
		return nil
	}
	tmp := link + ".new"
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
