package aufs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/moby/sys/mountinfo"
	"github.com/moby/sys/user"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/graphdriver"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/thinimage"
)

// Name is the backend's name, as `docker info` shows it.
const Name = "aufs"

// On-disk names below the home directory.
const (
	layersDirName = "layers"
	diffDirName   = "diff"
	mntDirName    = "mnt"
	mountsDirName = "mounts"
	thinDirName   = "thin"
	tempPrefix    = ".tmp-"
)

// AUFS whiteout names.
const (
	whPrefix     = ".wh."
	whMetaPrefix = ".wh..wh."
	opaqueMarker = ".wh..wh..opq"
)

// aufsMeta are the entries aufs keeps for itself at the root of a writable
// branch: the base file its whiteouts are hard links to, the pseudo-link
// directory and the orphan directory. They are no part of a layer.
var aufsMeta = []string{".wh..wh.aufs", ".wh..wh.plnk", ".wh..wh.orph"}

// Driver is the aufs backend. Create it with New.
type Driver struct {
	home      string
	cvmfsRoot string
	idMap     user.IdentityMapping
	mounter   mounter
	kernel    kernel
	// repos mounts repositories for the internal mount method; nil when
	// the host mounts them.
	repos Repositories

	// mountMu makes aufs mounts one at a time, as Docker's aufs driver
	// made them: they all share one xino file, and a layer's mount is a
	// sequence of calls.
	mountMu sync.Mutex

	// layersMu guards layers; each layer's own state has its own lock so
	// that a slow mount of one layer never waits on another.
	layersMu sync.Mutex
	layers   map[string]*layerState
}

// layerState is what the driver keeps in memory about one layer's mount.
type layerState struct {
	mu sync.Mutex
	// refs counts outstanding Gets of a mounted layer. loaded says whether
	// refs has been reconciled with the mount table since the driver
	// started.
	refs   int
	loaded bool
	// repos are the repositories the layer's mount holds a reference to,
	// with the internal mount method.
	repos []string
}

// New initialises the backend in opts.Home, creating the layout if needed.
// It fails, with an error matching ErrNotSupported, on a kernel without
// aufs, and when the home's file system cannot hold aufs branches. Thin
// images resolve their layers below cvmfsRoot (thinimage.DefaultRoot when
// empty). Daemon options in opts.Opts are refused: the backend has none.
// Without options, the host mounts the repositories; see WithRepositories.
func New(opts graphdriver.InitOptions, cvmfsRoot string, options ...Option) (*Driver, error) {
	if err := Supported(); err != nil {
		return nil, err
	}
	return newDriver(opts, cvmfsRoot, newKernelMounter(), detectKernel(), options...)
}

// newDriver is New with the mount step and the kernel's facts given, so
// that tests can run the backend on a kernel without aufs.
func newDriver(opts graphdriver.InitOptions, cvmfsRoot string, m mounter, k kernel, options ...Option) (*Driver, error) {
	if err := parseOptions(opts.Opts); err != nil {
		return nil, err
	}
	if cvmfsRoot == "" {
		cvmfsRoot = thinimage.DefaultRoot
	}
	idMap := identityMapping(opts.UIDMaps, opts.GIDMaps)
	rootUID, rootGID := idMap.RootPair()

	if err := os.MkdirAll(opts.Home, 0o711); err != nil {
		return nil, fmt.Errorf("failed to create home %s: %w", opts.Home, err)
	}
	if err := os.Lchown(opts.Home, rootUID, rootGID); err != nil {
		return nil, fmt.Errorf("failed to chown home %s: %w", opts.Home, err)
	}
	for _, sub := range []string{layersDirName, diffDirName, mntDirName, mountsDirName, thinDirName} {
		dir := filepath.Join(opts.Home, sub)
		if err := os.MkdirAll(dir, 0o710); err != nil {
			return nil, fmt.Errorf("failed to create %s: %w", dir, err)
		}
		if err := os.Lchown(dir, rootUID, rootGID); err != nil {
			return nil, fmt.Errorf("failed to chown %s: %w", dir, err)
		}
	}

	d := &Driver{
		home:      opts.Home,
		cvmfsRoot: filepath.Clean(cvmfsRoot),
		idMap:     idMap,
		mounter:   m,
		kernel:    k,
		layers:    make(map[string]*layerState),
	}
	for _, o := range options {
		o(d)
	}
	if err := d.removeTemporaries(); err != nil {
		return nil, err
	}
	if err := d.checkBackingFS(); err != nil {
		return nil, err
	}
	if err := d.detectDirperm1(); err != nil {
		return nil, err
	}
	if err := d.adoptMounted(); err != nil {
		return nil, err
	}
	return d, nil
}

// parseOptions checks the daemon's --storage-opt values. Docker's aufs
// driver had none, and neither has this backend.
func parseOptions(opts []string) error {
	if len(opts) > 0 {
		return fmt.Errorf("storage option %q is not supported by the %s backend of cvmfs-graphdriver", opts[0], Name)
	}
	return nil
}

func identityMapping(uids, gids []graphdriver.IDMap) user.IdentityMapping {
	var m user.IdentityMapping
	for _, u := range uids {
		m.UIDMaps = append(m.UIDMaps, user.IDMap{ID: int64(u.ContainerID), ParentID: int64(u.HostID), Count: int64(u.Size)})
	}
	for _, g := range gids {
		m.GIDMaps = append(m.GIDMaps, user.IDMap{ID: int64(g.ContainerID), ParentID: int64(g.HostID), Count: int64(g.Size)})
	}
	return m
}

// removeTemporaries deletes what an interrupted Create, Remove or check
// left behind: entries named with tempPrefix, which no layer id starts with.
func (d *Driver) removeTemporaries() error {
	for _, dir := range []string{d.home, d.path(layersDirName), d.path(diffDirName), d.path(mountsDirName), d.path(thinDirName)} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("failed to read %s: %w", dir, err)
		}
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), tempPrefix) {
				continue
			}
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("failed to remove leftover %s: %w", filepath.Join(dir, e.Name()), err)
			}
		}
	}
	return nil
}

// String implements graphdriver.Driver.
func (d *Driver) String() string { return Name }

// Capabilities implements graphdriver.Driver. Diff does not reproduce the
// exact tar ApplyDiff received, so dockerd keeps tar-split metadata.
func (d *Driver) Capabilities() graphdriver.Capabilities {
	return graphdriver.Capabilities{ReproducesExactDiffs: false}
}

// Status implements graphdriver.Driver.
func (d *Driver) Status() [][2]string {
	return [][2]string{
		{"Backend", Name},
		{"Backing Filesystem", d.kernel.backingFS},
		{"Dirs", strconv.Itoa(d.countEntries(layersDirName))},
		{"Dirperm1 Supported", strconv.FormatBool(d.kernel.dirperm1)},
		{"CernVM-FS Root", d.cvmfsRoot},
		{"Mount Method", d.mountMethod()},
		{"Thin Layers", strconv.Itoa(d.countEntries(thinDirName))},
	}
}

// countEntries counts the layers recorded in one directory of the layout.
func (d *Driver) countEntries(sub string) int {
	entries, err := os.ReadDir(d.path(sub))
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		if validateID(e.Name()) == nil {
			n++
		}
	}
	return n
}

// GetMetadata implements graphdriver.Driver: the layer's diff directory
// (its writable branch), its mount point, its read-only branches top first,
// and for a thin layer the directories of its repository layers, base
// first.
func (d *Driver) GetMetadata(id string) (map[string]string, error) {
	if err := validateID(id); err != nil {
		return nil, err
	}
	if !d.Exists(id) {
		return nil, fmt.Errorf("layer %s does not exist", id)
	}
	meta := map[string]string{
		"DiffDir":  d.diffDir(id),
		"MountDir": d.mntDir(id),
	}
	st, err := d.mountStack(id)
	if err != nil {
		return nil, err
	}
	if len(st.ro) > 0 {
		dirs := make([]string, 0, len(st.ro))
		for _, b := range st.ro {
			dirs = append(dirs, b.dir)
		}
		meta["BranchDirs"] = strings.Join(dirs, ":")
	}
	if rec, err := d.readThin(id); err == nil {
		dirs := make([]string, 0, len(rec.Layers))
		for _, l := range rec.Layers {
			dirs = append(dirs, l.Dir)
		}
		meta["ThinLayers"] = strings.Join(dirs, ":")
	}
	return meta, nil
}

// Cleanup implements graphdriver.Driver: dockerd calls it when it shuts
// down, after its containers stopped, so every mount left below home is
// released, and with them the repositories the layers held.
func (d *Driver) Cleanup() error {
	d.layersMu.Lock()
	layers := d.layers
	d.layers = make(map[string]*layerState)
	d.layersMu.Unlock()

	errs := []error{d.unmountAllBelow(d.home)}
	for id, s := range layers {
		errs = append(errs, d.releaseUnmounted(id, s))
	}
	return errors.Join(errs...)
}

// releaseUnmounted releases the repositories of layer id unless the layer
// is still mounted, as after a failed unmount.
func (d *Driver) releaseUnmounted(id string, s *layerState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.repos) == 0 {
		return nil
	}
	if mounted, err := mountinfo.Mounted(d.mntDir(id)); err == nil && mounted {
		return nil
	}
	repos := s.repos
	s.repos = nil
	return d.releaseRepositories(id, repos)
}

// Exists implements graphdriver.Driver.
func (d *Driver) Exists(id string) bool {
	if validateID(id) != nil {
		return false
	}
	_, err := os.Lstat(d.layerFile(id))
	return err == nil
}

func (d *Driver) path(elem ...string) string {
	return filepath.Join(append([]string{d.home}, elem...)...)
}

func (d *Driver) layerFile(id string) string { return d.path(layersDirName, id) }
func (d *Driver) diffDir(id string) string   { return d.path(diffDirName, id) }
func (d *Driver) mntDir(id string) string    { return d.path(mntDirName, id) }
func (d *Driver) mountsFile(id string) string {
	return d.path(mountsDirName, id)
}
func (d *Driver) thinDir(id string) string { return d.path(thinDirName, id) }

// errInvalidID marks a layer id the driver refuses to use as a path.
var errInvalidID = errors.New("invalid layer id")

// validateID accepts the ids dockerd makes (hex digests, "<hex>-init",
// random names) and refuses anything that could leave its directory, clash
// with a temporary name, or break aufs mount options.
func validateID(id string) error {
	if id == "" || id == "." || id == ".." || strings.HasPrefix(id, tempPrefix) {
		return fmt.Errorf("%w %q", errInvalidID, id)
	}
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
		default:
			return fmt.Errorf("%w %q: character %q is not allowed", errInvalidID, id, r)
		}
	}
	return nil
}

// state returns the in-memory state of layer id, creating it on first use.
func (d *Driver) state(id string) *layerState {
	d.layersMu.Lock()
	defer d.layersMu.Unlock()
	s, ok := d.layers[id]
	if !ok {
		s = &layerState{}
		d.layers[id] = s
	}
	return s
}

// forget drops the in-memory state of a removed layer.
func (d *Driver) forget(id string) {
	d.layersMu.Lock()
	defer d.layersMu.Unlock()
	delete(d.layers, id)
}
