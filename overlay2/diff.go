package overlay2

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/moby/go-archive"
	"golang.org/x/sys/unix"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/graphdriver"
)

// ApplyDiff implements graphdriver.Driver. The tar, with AUFS-style
// whiteouts, is unpacked into the layer's diff directory with whiteouts
// turned into overlay's. A layer whose tar brings thin.json becomes a thin
// layer; a malformed descriptor fails the call. On failure the diff
// directory is emptied again, so the layer is as it was before the call.
func (d *Driver) ApplyDiff(id, parent string, diff io.Reader) (size int64, retErr error) {
	dir, err := d.layerDir(id)
	if err != nil {
		return 0, err
	}
	if !d.isParent(id, parent) {
		return 0, fmt.Errorf("cannot apply a diff to layer %s: %q is not its parent", id, parent)
	}
	s := d.state(id)
	s.mu.Lock()
	defer s.mu.Unlock()

	diffDir := filepath.Join(dir, diffDirName)
	if _, err := os.Stat(diffDir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, fmt.Errorf("layer %s does not exist", id)
		}
		return 0, fmt.Errorf("layer %s: %w", id, err)
	}
	defer func() {
		if retErr != nil {
			if err := emptyDir(diffDir); err != nil {
				retErr = fmt.Errorf("%w (and the partly applied layer could not be emptied: %v)", retErr, err)
			}
		}
	}()

	opts := &archive.TarOptions{
		WhiteoutFormat: archive.OverlayWhiteoutFormat,
		IDMap:          d.idMap,
	}
	// Unpack, unlike UnpackLayer, turns ".wh." entries into overlay
	// whiteouts instead of deleting paths in the (empty) diff directory.
	err = inPrivateFS("", func() error {
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

// Diff implements graphdriver.Driver: the layer's diff directory as a tar,
// with overlay's whiteouts and opaque directories turned into AUFS-style
// entries. The tar is produced while it is read. For a thin layer it holds
// thin.json alone.
func (d *Driver) Diff(id, parent string) (io.ReadCloser, error) {
	if naive, err := d.needNaiveDiff(id, parent); err != nil || naive {
		if err != nil {
			return nil, err
		}
		return d.naiveDiff(id, parent)
	}
	dir, err := d.layerDir(id)
	if err != nil {
		return nil, err
	}
	return archive.TarWithOptions(filepath.Join(dir, diffDirName), &archive.TarOptions{
		WhiteoutFormat: archive.OverlayWhiteoutFormat,
		IDMap:          d.idMap,
	})
}

// DiffSize implements graphdriver.Driver: the apparent size of the files in
// the layer's diff directory, each hard-linked file counted once.
func (d *Driver) DiffSize(id, parent string) (int64, error) {
	if naive, err := d.needNaiveDiff(id, parent); err != nil || naive {
		if err != nil {
			return 0, err
		}
		changes, dir, release, err := d.naiveChanges(id, parent)
		if err != nil {
			return 0, err
		}
		defer release()
		return archive.ChangesSize(dir, changes), nil
	}
	dir, err := d.layerDir(id)
	if err != nil {
		return 0, err
	}
	return dirSize(filepath.Join(dir, diffDirName))
}

// Changes implements graphdriver.Driver.
func (d *Driver) Changes(id, parent string) ([]graphdriver.Change, error) {
	if naive, err := d.needNaiveDiff(id, parent); err != nil || naive {
		if err != nil {
			return nil, err
		}
		changes, _, release, err := d.naiveChanges(id, parent)
		if err != nil {
			return nil, err
		}
		defer release()
		return convertChanges(changes), nil
	}
	dir, err := d.layerDir(id)
	if err != nil {
		return nil, err
	}
	chain, err := d.mountChain(id)
	if err != nil {
		return nil, err
	}
	// The lower directories are read here, not mounted: the repositories
	// they lie in are held while they are.
	repos, err := d.acquireRepositories("read", id, chain)
	if err != nil {
		return nil, err
	}
	lowers := make([]string, 0, len(chain.entries))
	for _, e := range chain.entries {
		lowers = append(lowers, e.abs)
	}
	changes, err := overlayChanges(filepath.Join(dir, diffDirName), lowers)
	return changes, errors.Join(err, d.releaseRepositories(id, repos))
}

// needNaiveDiff reports whether a diff of layer id against parent must be
// computed by comparing trees: when parent is not the layer's own, or when
// the kernel's overlay records renamed directories or metadata-only copies
// in ways the upper directory does not show and the backend could not turn
// that off for its mounts.
func (d *Driver) needNaiveDiff(id, parent string) (bool, error) {
	if !d.Exists(id) {
		return false, fmt.Errorf("layer %s does not exist", id)
	}
	if parent != "" && !d.Exists(parent) {
		return false, fmt.Errorf("layer %s does not exist", parent)
	}
	return d.features.naiveDiff || !d.isParent(id, parent), nil
}

// isParent reports whether parent is the direct parent of layer id.
func (d *Driver) isParent(id, parent string) bool {
	lowers, err := d.readLower(id)
	if err != nil {
		return false
	}
	if parent == "" {
		return len(lowers) == 0
	}
	pdir, err := d.layerDir(parent)
	if err != nil || len(lowers) == 0 {
		return false
	}
	link, err := os.ReadFile(filepath.Join(pdir, linkFile))
	if err != nil {
		return false
	}
	return lowers[0] == filepath.Join(linkDir, string(link))
}

// emptyDir removes everything inside dir, keeping dir itself but dropping
// an opaque mark a failed apply may have put on it.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	if err := unix.Lremovexattr(dir, opaqueXattr); err != nil && !errors.Is(err, unix.ENODATA) {
		errs = append(errs, err)
	}
	for _, e := range entries {
		errs = append(errs, os.RemoveAll(filepath.Join(dir, e.Name())))
	}
	return errors.Join(errs...)
}
