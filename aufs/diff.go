package aufs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/moby/go-archive"
	"github.com/moby/sys/mountinfo"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/graphdriver"
)

// ApplyDiff implements graphdriver.Driver. The tar is unpacked into the
// layer's diff directory as it is: its ".wh." entries are AUFS whiteouts
// already, which aufs honours where they lie. A layer whose tar brings
// thin.json becomes a thin layer; a malformed descriptor, or repository
// layers aufs cannot honour, fail the call. On failure the diff directory
// is emptied again, so the layer is as it was before the call.
func (d *Driver) ApplyDiff(id, parent string, diff io.Reader) (size int64, retErr error) {
	if err := validateID(id); err != nil {
		return 0, err
	}
	if !d.Exists(id) {
		return 0, fmt.Errorf("layer %s does not exist", id)
	}
	if !d.isParent(id, parent) {
		return 0, fmt.Errorf("cannot apply a diff to layer %s: %q is not its parent", id, parent)
	}
	s := d.state(id)
	s.mu.Lock()
	defer s.mu.Unlock()

	diffDir := d.diffDir(id)
	defer func() {
		if retErr != nil {
			if err := errors.Join(emptyDir(diffDir), os.RemoveAll(d.thinDir(id))); err != nil {
				retErr = fmt.Errorf("%w (and the partly applied layer could not be emptied: %v)", retErr, err)
			}
		}
	}()

	opts := &archive.TarOptions{
		WhiteoutFormat: archive.AUFSWhiteoutFormat,
		IDMap:          d.idMap,
	}
	// Unpack, unlike UnpackLayer, keeps ".wh." entries as files instead of
	// deleting paths in the (empty) diff directory.
	err := inPrivateFS("", func() error {
		return archive.Unpack(diff, diffDir, opts)
	})
	if err != nil {
		return 0, fmt.Errorf("failed to apply the diff of layer %s: %w", id, err)
	}
	if err := d.detectThin(id, diffDir); err != nil {
		return 0, err
	}
	return dirSize(diffDir)
}

// Diff implements graphdriver.Driver: the tar of the layer's diff
// directory, whose deletions are AUFS whiteouts already, without aufs's
// bookkeeping at its root. The tar is produced while it is read. For a
// thin layer it holds thin.json alone.
func (d *Driver) Diff(id, parent string) (io.ReadCloser, error) {
	direct, err := d.checkDiffArgs(id, parent)
	if err != nil {
		return nil, err
	}
	if !direct {
		return d.naiveDiff(id, parent)
	}
	if err := d.flush(id); err != nil {
		return nil, err
	}
	return archive.TarWithOptions(d.diffDir(id), &archive.TarOptions{
		WhiteoutFormat:  archive.AUFSWhiteoutFormat,
		IDMap:           d.idMap,
		ExcludePatterns: aufsMeta,
	})
}

// DiffSize implements graphdriver.Driver: the apparent size of the files in
// the layer's diff directory, each hard-linked file counted once.
func (d *Driver) DiffSize(id, parent string) (int64, error) {
	direct, err := d.checkDiffArgs(id, parent)
	if err != nil {
		return 0, err
	}
	if !direct {
		changes, dir, release, err := d.naiveChanges(id, parent)
		if err != nil {
			return 0, err
		}
		defer release()
		return archive.ChangesSize(dir, changes), nil
	}
	if err := d.flush(id); err != nil {
		return 0, err
	}
	return dirSize(d.diffDir(id))
}

// Changes implements graphdriver.Driver, reading the layer's diff directory
// with aufs's rules against the branches below it.
func (d *Driver) Changes(id, parent string) ([]graphdriver.Change, error) {
	direct, err := d.checkDiffArgs(id, parent)
	if err != nil {
		return nil, err
	}
	if !direct {
		changes, _, release, err := d.naiveChanges(id, parent)
		if err != nil {
			return nil, err
		}
		defer release()
		return convertChanges(changes), nil
	}
	if err := d.flush(id); err != nil {
		return nil, err
	}
	st, err := d.mountStack(id)
	if err != nil {
		return nil, err
	}
	// The branches below are read here, not mounted: the repositories
	// they lie in are held while they are.
	repos, err := d.acquireRepositories("read", id, st)
	if err != nil {
		return nil, err
	}
	lowers := make(union, 0, len(st.ro))
	for _, b := range st.ro {
		lowers = append(lowers, b.dir)
	}
	changes, err := aufsChanges(d.diffDir(id), lowers)
	return changes, errors.Join(err, d.releaseRepositories(id, repos))
}

// checkDiffArgs checks that both layers exist and says whether parent is
// the direct parent of layer id, the case the diff directory answers.
func (d *Driver) checkDiffArgs(id, parent string) (direct bool, _ error) {
	if err := validateID(id); err != nil {
		return false, err
	}
	if !d.Exists(id) {
		return false, fmt.Errorf("layer %s does not exist", id)
	}
	if parent != "" && !d.Exists(parent) {
		return false, fmt.Errorf("layer %s does not exist", parent)
	}
	return d.isParent(id, parent), nil
}

// isParent reports whether parent is the direct parent of layer id.
func (d *Driver) isParent(id, parent string) bool {
	parents, err := d.readParents(id)
	if err != nil {
		return false
	}
	if parent == "" {
		return len(parents) == 0
	}
	return len(parents) > 0 && parents[0] == parent
}

// flush asks a mounter that holds a mounted layer's writes apart from its
// branch to write them through (see flusher); with the kernel's aufs it
// does nothing.
func (d *Driver) flush(id string) error {
	f, ok := d.mounter.(flusher)
	if !ok {
		return nil
	}
	s := d.state(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	target := d.mntDir(id)
	mounted, err := mountinfo.Mounted(target)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("failed to check whether %s is mounted: %w", target, err)
	}
	if !mounted {
		return nil
	}
	if err := f.Flush(target); err != nil {
		return fmt.Errorf("failed to write the changes of layer %s through: %w", id, err)
	}
	return nil
}

// emptyDir removes everything inside dir, keeping dir itself.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		errs = append(errs, os.RemoveAll(filepath.Join(dir, e.Name())))
	}
	return errors.Join(errs...)
}

// dirSize returns the apparent size of the files below dir, counting each
// hard-linked inode once and leaving out aufs's bookkeeping at its root.
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
		if filepath.Dir(path) == dir && slices.Contains(aufsMeta, entry.Name()) {
			if entry.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if entry.IsDir() {
			return nil
		}
		fi, err := entry.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
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
