package overlay2

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/sys/mountinfo"
)

// Get implements graphdriver.Driver. A layer without lower directories (a
// base layer, a thin layer, a layer above an empty thin image) is served
// from its diff directory; any other is mounted on its merged directory on
// the first Get and shared by later ones. With the internal mount method
// the first Get of a layer above a thin layer also acquires the thin
// image's repositories; a Get that fails holds none.
func (d *Driver) Get(id, mountLabel string) (_ string, retErr error) {
	dir, err := d.layerDir(id)
	if err != nil {
		return "", err
	}
	s := d.state(id)
	s.mu.Lock()
	defer s.mu.Unlock()

	if _, err := os.Stat(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("layer %s does not exist", id)
		}
		return "", fmt.Errorf("layer %s: %w", id, err)
	}
	chain, err := d.mountChain(id)
	if err != nil {
		return "", err
	}
	diffDir := filepath.Join(dir, diffDirName)
	if len(chain.entries) == 0 {
		return diffDir, nil
	}

	merged := filepath.Join(dir, mergedDirName)
	if err := d.loadRefs(s, dir); err != nil {
		return "", err
	}
	if s.refs > 0 {
		s.refs++
		return merged, d.saveRefs(s, dir)
	}

	// The repositories must be mounted before prepareThin checks the
	// layer directories in them.
	repos, err := d.acquireRepositories("mount", id, chain)
	if err != nil {
		return "", err
	}
	defer func() {
		if retErr != nil {
			retErr = errors.Join(retErr, d.releaseRepositories(id, repos))
		}
	}()
	if chain, err = d.prepareThin(id, chain); err != nil {
		return "", err
	}
	rootUID, rootGID := d.idMap.RootPair()
	if err := os.Mkdir(merged, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("failed to create mount point of layer %s: %w", id, err)
	}
	if err := os.Lchown(merged, rootUID, rootGID); err != nil {
		return "", fmt.Errorf("failed to chown mount point of layer %s: %w", id, err)
	}
	data, relative, err := d.mountData(id, chain, mountLabel)
	if err != nil {
		return "", err
	}
	if err := mountOverlay(d.home, merged, data, relative); err != nil {
		return "", fmt.Errorf("failed to mount layer %s: %w", id, err)
	}
	defer func() {
		if retErr != nil {
			unmount(merged)
		}
	}()
	s.refs, s.repos = 1, repos
	if err := d.saveRefs(s, dir); err != nil {
		s.refs, s.repos = 0, nil
		return "", err
	}
	return merged, nil
}

// Put implements graphdriver.Driver. The last Put of a mounted layer
// unmounts it and removes the mount point, so the layer's files are not
// reachable through a stale mount in another namespace, and releases the
// repositories the layer held. A Put without a matching Get is harmless.
func (d *Driver) Put(id string) error {
	dir, err := d.layerDir(id)
	if err != nil {
		return err
	}
	s := d.state(id)
	s.mu.Lock()
	defer s.mu.Unlock()

	merged := filepath.Join(dir, mergedDirName)
	if err := d.loadRefs(s, dir); err != nil {
		return err
	}
	if s.refs > 1 {
		s.refs--
		return d.saveRefs(s, dir)
	}
	s.refs = 0
	if err := unmount(merged); err != nil {
		return fmt.Errorf("failed to unmount layer %s: %w", id, err)
	}
	// Removing the mount point may fail while it is still a mount point
	// in another namespace; it is then left for the next Get to reuse.
	os.Remove(merged)
	repos := s.repos
	s.repos = nil
	return errors.Join(d.saveRefs(s, dir), d.releaseRepositories(id, repos))
}

// mountChain returns the lower directories layer id is mounted with.
func (d *Driver) mountChain(id string) (lowerChain, error) {
	if d.isThin(id) {
		return lowerChain{}, nil
	}
	lowers, err := d.readLower(id)
	if err != nil || len(lowers) == 0 {
		return lowerChain{}, err
	}
	return d.expandLower(lowers)
}

// mountData builds the overlay options for layer id. Absolute paths are used
// when they fit in a page and contain no separator overlay would misread;
// otherwise paths are relative to home and the mount is made from there.
func (d *Driver) mountData(id string, chain lowerChain, mountLabel string) (data string, relative bool, _ error) {
	var extra []string
	extra = append(extra, d.features.mountOptions...)
	if mountLabel != "" {
		extra = append(extra, "context="+strconv.Quote(mountLabel))
	}
	build := func(lowers []string, upper, work string) string {
		opts := []string{
			"lowerdir=" + strings.Join(lowers, ":"),
			"upperdir=" + upper,
			"workdir=" + work,
		}
		return strings.Join(append(opts, extra...), ",")
	}

	abs := make([]string, 0, len(chain.entries))
	safe := !strings.ContainsAny(d.home, ":,\\")
	for _, e := range chain.entries {
		abs = append(abs, e.abs)
		if strings.ContainsAny(e.abs, ":,\\") {
			safe = false
		}
	}
	dir := filepath.Join(d.home, id)
	data = build(abs, filepath.Join(dir, diffDirName), filepath.Join(dir, workDirName))
	if safe && len(data) <= maxMountData {
		return data, false, nil
	}

	rel := make([]string, 0, len(chain.entries))
	for _, e := range chain.entries {
		rel = append(rel, e.rel)
	}
	data = build(rel, filepath.Join(id, diffDirName), filepath.Join(id, workDirName))
	if len(data) > maxMountData {
		return "", false, fmt.Errorf("cannot mount layer %s: its %d lower layers need %d bytes of mount options, more than the kernel's %d",
			id, len(chain.entries), len(data), maxMountData)
	}
	return data, true, nil
}

// loadRefs reconciles a layer's reference count with the mount table the
// first time the driver touches the layer. A plugin restarted by dockerd
// finds its layers still mounted: a mounted layer keeps the count recorded
// on disk (at least one), an unmounted one starts from zero.
func (d *Driver) loadRefs(s *layerState, dir string) error {
	if s.loaded {
		return nil
	}
	merged := filepath.Join(dir, mergedDirName)
	mounted, err := mountinfo.Mounted(merged)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("failed to check whether %s is mounted: %w", merged, err)
	}
	s.refs = 0
	if mounted {
		s.refs = 1
		if data, err := os.ReadFile(filepath.Join(dir, mountsFile)); err == nil {
			if n, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && n > 1 {
				s.refs = n
			}
		}
	}
	s.loaded = true
	return nil
}

// saveRefs records a layer's reference count so that a restarted plugin
// can pick it up. It is not synced: the count matters only while the
// mounts it describes exist, and they do not outlive the machine.
func (d *Driver) saveRefs(s *layerState, dir string) error {
	path := filepath.Join(dir, mountsFile)
	if s.refs == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("failed to record mount count: %w", err)
		}
		return nil
	}
	if err := writeFileAtomic(path, []byte(strconv.Itoa(s.refs))); err != nil {
		return fmt.Errorf("failed to record mount count: %w", err)
	}
	return nil
}
