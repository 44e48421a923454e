package aufs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/graphdriver"
)

// ErrStorageOpt marks a --storage-opt the backend cannot honour.
var ErrStorageOpt = errors.New("storage option not supported")

// Create implements graphdriver.Driver.
func (d *Driver) Create(id, parent string, opts graphdriver.CreateOpts) error {
	return d.create(id, parent, opts)
}

// CreateReadWrite implements graphdriver.Driver. A container's layer is
// built exactly like an image layer: both are mounted with their own diff
// directory as the writable branch.
func (d *Driver) CreateReadWrite(id, parent string, opts graphdriver.CreateOpts) error {
	return d.create(id, parent, opts)
}

// create makes the layer's directories and writes its parent chain last:
// the layer exists once layers/<id> does, so a crash before that leaves
// only directories that the next Create or Remove of the id clears away.
func (d *Driver) create(id, parent string, opts graphdriver.CreateOpts) (retErr error) {
	if len(opts.StorageOpt) > 0 {
		keys := make([]string, 0, len(opts.StorageOpt))
		for k := range opts.StorageOpt {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return fmt.Errorf("%w: --storage-opt %s is not supported by the %s backend of cvmfs-graphdriver; remove it from the command",
			ErrStorageOpt, strings.Join(keys, ", "), Name)
	}
	if err := validateID(id); err != nil {
		return err
	}
	s := d.state(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if d.Exists(id) {
		return fmt.Errorf("layer %s already exists", id)
	}

	var chain []string
	if parent != "" {
		if !d.Exists(parent) {
			return fmt.Errorf("parent layer %s does not exist", parent)
		}
		parents, err := d.readParents(parent)
		if err != nil {
			return err
		}
		chain = append([]string{parent}, parents...)
		st, err := d.stackOf(chain)
		if err != nil {
			return err
		}
		if err := d.checkBranchCount("create", id, st); err != nil {
			return err
		}
	}

	if err := d.removeLayerDirs(id); err != nil {
		return err
	}
	rootUID, rootGID := d.idMap.RootPair()
	tmp, err := os.MkdirTemp(d.path(diffDirName), tempPrefix+id+"-")
	if err != nil {
		return fmt.Errorf("failed to create layer %s: %w", id, err)
	}
	defer func() {
		if retErr != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := chmodOwned(tmp, 0o755, rootUID, rootGID); err != nil {
		return fmt.Errorf("failed to create layer %s: %w", id, err)
	}
	if err := os.Rename(tmp, d.diffDir(id)); err != nil {
		return fmt.Errorf("failed to create layer %s: %w", id, err)
	}
	defer func() {
		if retErr != nil {
			d.removeLayerDirs(id)
		}
	}()
	if err := os.Mkdir(d.mntDir(id), 0o755); err != nil {
		return fmt.Errorf("failed to create layer %s: %w", id, err)
	}
	if err := chmodOwned(d.mntDir(id), 0o755, rootUID, rootGID); err != nil {
		return fmt.Errorf("failed to create layer %s: %w", id, err)
	}

	var list strings.Builder
	for _, p := range chain {
		list.WriteString(p + "\n")
	}
	if err := writeFileAtomic(d.layerFile(id), []byte(list.String())); err != nil {
		return fmt.Errorf("failed to create layer %s: %w", id, err)
	}
	return nil
}

// Remove implements graphdriver.Driver. Removing a layer that does not
// exist succeeds, as with Docker's drivers, and clears what an interrupted
// Create or Remove of it left behind.
func (d *Driver) Remove(id string) (retErr error) {
	if err := validateID(id); err != nil {
		return err
	}
	s := d.state(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	defer d.forget(id)

	if err := d.unmountIfMounted(d.mntDir(id)); err != nil {
		return fmt.Errorf("failed to remove layer %s: %w", id, err)
	}
	// With its mount gone, the layer holds its repositories no more,
	// whatever else fails.
	repos := s.repos
	s.repos = nil
	defer func() {
		retErr = errors.Join(retErr, d.releaseRepositories(id, repos))
	}()
	if err := os.Remove(d.layerFile(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("failed to remove layer %s: %w", id, err)
	}
	return d.removeLayerDirs(id)
}

// removeLayerDirs removes everything but the parent chain the driver holds
// for layer id. The mount point is removed only once empty: a mount point
// is never emptied, since that would delete through a mount that is still
// there.
func (d *Driver) removeLayerDirs(id string) error {
	if err := d.unmountIfMounted(d.mntDir(id)); err != nil {
		return fmt.Errorf("failed to remove layer %s: %w", id, err)
	}
	for _, dir := range []string{d.diffDir(id), d.thinDir(id)} {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("failed to remove layer %s: %w", id, err)
		}
	}
	for _, p := range []string{d.mntDir(id), d.mountsFile(id)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("failed to remove layer %s: %w", id, err)
		}
	}
	return nil
}

// chmodOwned gives path the mode and owner, whatever the umask.
func chmodOwned(path string, mode os.FileMode, uid, gid int) error {
	if err := os.Chmod(path, mode); err != nil {
		return err
	}
	return os.Lchown(path, uid, gid)
}

// writeFileAtomic writes data to a temporary file beside path and renames it
// into place, so readers see the old content or the new, never a part.
func writeFileAtomic(path string, data []byte) (retErr error) {
	f, err := os.CreateTemp(filepath.Dir(path), tempPrefix+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	defer func() {
		if retErr != nil {
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
