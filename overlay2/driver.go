package overlay2

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
const Name = "overlay2"

// On-disk names below the home directory and inside each layer directory.
const (
	linkDir       = "l"
	diffDirName   = "diff"
	workDirName   = "work"
	mergedDirName = "merged"
	lowerFile     = "lower"
	linkFile      = "link"
	thinFile      = "thin"
	mountsFile    = "mounts"
	tempPrefix    = ".tmp-"
)

// Limits. A layer above the chain may see at most maxDepth lower layers; the
// kernel's overlay accepts more in recent versions, but Docker's overlay2 has
// always stopped at 128 and images built for it stay within that. Short link
// names of linkIDLength characters keep 128 relative lower paths, the upper
// and work directories and the other options inside one page:
// 128 * (len("l/") + 26 + len(":")) = 3712 bytes, leaving room below 4096.
const (
	maxDepth     = 128
	linkIDLength = 26
	maxMountData = 4096 - 1
)

// Driver is the overlay2 backend. Create it with New.
type Driver struct {
	home      string
	cvmfsRoot string
	idMap     user.IdentityMapping
	features  features
	// repos mounts repositories for the internal mount method; nil when
	// the host mounts them.
	repos Repositories

	// layersMu guards layers; each layer's own state has its own lock so
	// that slow mounts of one layer never wait on another.
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

// New initialises the backend in opts.Home, creating it if needed, and
// checks that the kernel and the backing file system can serve it. Thin
// images resolve their layers below cvmfsRoot. Daemon options in opts.Opts
// are refused unless listed in parseOptions. Without options, the host
// mounts the repositories; see WithRepositories.
func New(opts graphdriver.InitOptions, cvmfsRoot string, options ...Option) (*Driver, error) {
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
	if err := os.MkdirAll(filepath.Join(opts.Home, linkDir), 0o700); err != nil {
		return nil, fmt.Errorf("failed to create %s: %w", filepath.Join(opts.Home, linkDir), err)
	}
	if err := os.Lchown(opts.Home, rootUID, rootGID); err != nil {
		return nil, fmt.Errorf("failed to chown home %s: %w", opts.Home, err)
	}
	feat, err := detectFeatures(opts.Home)
	if err != nil {
		return nil, err
	}
	d := &Driver{
		home:      opts.Home,
		cvmfsRoot: filepath.Clean(cvmfsRoot),
		idMap:     idMap,
		features:  feat,
		layers:    make(map[string]*layerState),
	}
	for _, o := range options {
		o(d)
	}
	if err := d.removeTemporaries(); err != nil {
		return nil, err
	}
	if err := d.adoptMounted(); err != nil {
		return nil, err
	}
	return d, nil
}

// parseOptions checks the daemon's --storage-opt values. None changes the
// backend's behaviour; overlay2.override_kernel_check is accepted because
// daemon configurations written for Docker's overlay2 carry it.
func parseOptions(opts []string) error {
	for _, opt := range opts {
		key, _, _ := strings.Cut(opt, "=")
		switch strings.ToLower(strings.TrimSpace(key)) {
		case "overlay2.override_kernel_check":
		default:
			return fmt.Errorf("storage option %q is not supported by the %s backend of cvmfs-graphdriver", opt, Name)
		}
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

// removeTemporaries deletes what an interrupted Create left behind.
func (d *Driver) removeTemporaries() error {
	entries, err := os.ReadDir(d.home)
	if err != nil {
		return fmt.Errorf("failed to read home %s: %w", d.home, err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			if err := os.RemoveAll(filepath.Join(d.home, e.Name())); err != nil {
				return fmt.Errorf("failed to remove leftover %s: %w", e.Name(), err)
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
		{"Backing Filesystem", d.features.backingFS},
		{"Supports d_type", strconv.FormatBool(d.features.dType)},
		{"Native Overlay Diff", strconv.FormatBool(!d.features.naiveDiff)},
		{"CernVM-FS Root", d.cvmfsRoot},
		{"Mount Method", d.mountMethod()},
		{"Thin Layers", strconv.Itoa(d.countThinLayers())},
	}
}

// countThinLayers counts layers whose directory holds a thin record.
func (d *Driver) countThinLayers() int {
	matches, err := filepath.Glob(filepath.Join(d.home, "*", thinFile))
	if err != nil {
		return 0
	}
	return len(matches)
}

// GetMetadata implements graphdriver.Driver with the same keys as Docker's
// overlay2, plus the thin image's layer directories for a thin layer.
func (d *Driver) GetMetadata(id string) (map[string]string, error) {
	dir, err := d.layerDir(id)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("layer %s: %w", id, err)
	}
	meta := map[string]string{
		"WorkDir":   filepath.Join(dir, workDirName),
		"MergedDir": filepath.Join(dir, mergedDirName),
		"UpperDir":  filepath.Join(dir, diffDirName),
	}
	lowers, err := d.lowerDirs(id)
	if err != nil {
		return nil, err
	}
	if len(lowers) > 0 {
		meta["LowerDir"] = strings.Join(lowers, ":")
	}
	if thin, err := d.readThin(id); err == nil {
		var dirs []string
		for _, l := range thin.Layers {
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

	errs := []error{unmountAllBelow(d.home)}
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
	merged := filepath.Join(d.home, id, mergedDirName)
	if mounted, err := mountinfo.Mounted(merged); err == nil && mounted {
		return nil
	}
	repos := s.repos
	s.repos = nil
	return d.releaseRepositories(id, repos)
}

// Exists implements graphdriver.Driver.
func (d *Driver) Exists(id string) bool {
	dir, err := d.layerDir(id)
	if err != nil {
		return false
	}
	_, err = os.Stat(dir)
	return err == nil
}

// layerDir returns the directory of layer id, refusing ids that could name
// anything outside home.
func (d *Driver) layerDir(id string) (string, error) {
	if err := validateID(id); err != nil {
		return "", err
	}
	return filepath.Join(d.home, id), nil
}

// errInvalidID marks a layer id the driver refuses to use as a path.
var errInvalidID = errors.New("invalid layer id")

// validateID accepts the ids dockerd makes (hex digests, "<hex>-init",
// random names) and refuses anything that could leave home or break mount
// options.
func validateID(id string) error {
	if id == "" || id == "." || id == ".." || id == linkDir || strings.HasPrefix(id, tempPrefix) {
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
