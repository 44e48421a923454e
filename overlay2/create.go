package overlay2

import (
	"crypto/rand"
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
// built exactly like an image layer: both are mounted with an upper
// directory.
func (d *Driver) CreateReadWrite(id, parent string, opts graphdriver.CreateOpts) error {
	return d.create(id, parent, opts)
}

// create builds the layer in a temporary directory and renames it into
// place, so a crash never leaves a layer that looks complete but is not.
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
	dir, err := d.layerDir(id)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(dir); err == nil {
		return fmt.Errorf("layer %s already exists", id)
	}

	var lower string
	if parent != "" {
		lower, err = d.childLower(parent)
		if err != nil {
			return err
		}
		if err := d.checkDepth(id, lower); err != nil {
			return err
		}
	}

	rootUID, rootGID := d.idMap.RootPair()
	tmp, err := os.MkdirTemp(d.home, tempPrefix+id+"-")
	if err != nil {
		return fmt.Errorf("failed to create layer %s: %w", id, err)
	}
	defer func() {
		if retErr != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o711); err != nil {
		return fmt.Errorf("failed to create layer %s: %w", id, err)
	}
	if err := os.Lchown(tmp, rootUID, rootGID); err != nil {
		return fmt.Errorf("failed to create layer %s: %w", id, err)
	}
	if err := mkdirOwned(filepath.Join(tmp, diffDirName), 0o755, rootUID, rootGID); err != nil {
		return fmt.Errorf("failed to create layer %s: %w", id, err)
	}
	link, err := newLinkID()
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(tmp, linkFile), []byte(link)); err != nil {
		return fmt.Errorf("failed to create layer %s: %w", id, err)
	}
	if parent != "" {
		if err := mkdirOwned(filepath.Join(tmp, workDirName), 0o700, rootUID, rootGID); err != nil {
			return fmt.Errorf("failed to create layer %s: %w", id, err)
		}
		if err := writeFileAtomic(filepath.Join(tmp, lowerFile), []byte(lower)); err != nil {
			return fmt.Errorf("failed to create layer %s: %w", id, err)
		}
	}

	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("failed to create layer %s: %w", id, err)
	}
	defer func() {
		if retErr != nil {
			os.RemoveAll(dir)
		}
	}()
	if err := os.Symlink(filepath.Join("..", id, diffDirName), filepath.Join(d.home, linkDir, link)); err != nil {
		return fmt.Errorf("failed to create short link for layer %s: %w", id, err)
	}
	return nil
}

// childLower returns the lower file content of a new layer above parent:
// the parent's own link first, then the parent's lowers.
func (d *Driver) childLower(parent string) (string, error) {
	pdir, err := d.layerDir(parent)
	if err != nil {
		return "", err
	}
	link, err := os.ReadFile(filepath.Join(pdir, linkFile))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("parent layer %s does not exist", parent)
		}
		return "", fmt.Errorf("failed to read link of parent layer %s: %w", parent, err)
	}
	lowers := []string{filepath.Join(linkDir, string(link))}
	parentLower, err := os.ReadFile(filepath.Join(pdir, lowerFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("failed to read lower of parent layer %s: %w", parent, err)
	}
	if len(parentLower) > 0 {
		lowers = append(lowers, strings.Split(string(parentLower), ":")...)
	}
	return strings.Join(lowers, ":"), nil
}

// checkDepth refuses a layer whose mount would need more than maxDepth lower
// directories, counting a thin image's repository layers.
func (d *Driver) checkDepth(id, lower string) error {
	chain, err := d.expandLower(strings.Split(lower, ":"))
	if err != nil {
		return err
	}
	if len(chain.entries) > maxDepth {
		return d.depthError("create", id, chain)
	}
	return nil
}

// depthError says that layer id cannot be made or mounted above chain
// because it is too deep. For a thin image it names the thin layer and the
// image's origin, and says where the lower layers come from: the
// repository, the local whiteout layers the user did not make and would
// not otherwise know about, and local layers above the thin layer, such as
// a container's init layer.
func (d *Driver) depthError(op, id string, chain lowerChain) error {
	if chain.thinID == "" {
		return fmt.Errorf("cannot %s layer %s: the image has %d layers below it and the %s backend mounts at most %d",
			op, id, len(chain.entries), Name, maxDepth)
	}
	origin := ""
	if rec, err := d.readThin(chain.thinID); err == nil && rec.Origin != "" {
		origin = fmt.Sprintf(" (origin %s)", rec.Origin)
	}
	var repository, whiteouts, local int
	for _, e := range chain.entries {
		switch {
		case e.thin != nil:
			repository++
		case e.whiteout:
			whiteouts++
		default:
			local++
		}
	}
	localLayers := func(n int) string {
		if n == 1 {
			return "1 local layer"
		}
		return fmt.Sprintf("%d local layers", n)
	}
	parts := []string{fmt.Sprintf("%d from the repository", repository)}
	if whiteouts > 0 {
		parts = append(parts, localLayers(whiteouts)+" that honour its whiteout markers")
	}
	if local > 0 {
		parts = append(parts, localLayers(local)+" above it")
	}
	return fmt.Errorf("cannot %s layer %s: the thin image in layer %s%s needs %d lower layers (%s) and the %s backend mounts at most %d",
		op, id, chain.thinID, origin, len(chain.entries), strings.Join(parts, ", "), Name, maxDepth)
}

// Remove implements graphdriver.Driver. Removing a layer that does not
// exist succeeds, as with Docker's overlay2.
func (d *Driver) Remove(id string) (retErr error) {
	dir, err := d.layerDir(id)
	if err != nil {
		return err
	}
	s := d.state(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	defer d.forget(id)

	if err := unmount(filepath.Join(dir, mergedDirName)); err != nil {
		return err
	}
	// With its mount gone, the layer holds its repositories no more,
	// whatever else fails.
	repos := s.repos
	s.repos = nil
	defer func() {
		retErr = errors.Join(retErr, d.releaseRepositories(id, repos))
	}()
	if link, err := os.ReadFile(filepath.Join(dir, linkFile)); err == nil && len(link) > 0 {
		if err := os.Remove(filepath.Join(d.home, linkDir, string(link))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("failed to remove short link of layer %s: %w", id, err)
		}
	}
	if err := d.removeThinLinks(id); err != nil {
		return err
	}
	if err := d.removeWhiteoutLinks(id); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("failed to remove layer %s: %w", id, err)
	}
	return nil
}

// newLinkID returns a random short link name of upper-case letters and
// digits.
func newLinkID() (string, error) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	b := make([]byte, linkIDLength)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("failed to make a short link name: %w", err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b), nil
}

// mkdirOwned makes one directory with the given mode and owner, whatever the
// umask.
func mkdirOwned(path string, mode os.FileMode, uid, gid int) error {
	if err := os.Mkdir(path, mode); err != nil {
		return err
	}
	if err := os.Chmod(path, mode); err != nil {
		return err
	}
	return os.Lchown(path, uid, gid)
}

// writeFileAtomic writes data to a temporary file beside path and renames it
// into place, so readers see the old content or the new, never a part.
func writeFileAtomic(path string, data []byte) (retErr error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-")
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
