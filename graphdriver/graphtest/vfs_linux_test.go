package graphtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	continuityfs "github.com/containerd/continuity/fs"
	"github.com/moby/go-archive"
	"github.com/moby/sys/mountinfo"
	"github.com/moby/sys/user"
	"golang.org/x/sys/unix"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/graphdriver"
)

// vfs is the suite's reference backend, which proves the suite itself: every
// layer is a full copy of its parent, built with Docker's own archive and
// change code, so what the suite expects is what Docker does. Get bind-mounts
// a layer's tree, with reference counts rebuilt from the mount table after a
// restart, so that the suite's mount checks have something to check. It is
// slow and simple on purpose; it is not a backend of the plugin.
//
// Layout under home, per layer id:
//
//	<id>/root    the layer's tree; for a thin layer, what its tar held
//	<id>/parent  the parent's id, absent for a layer without parent
//	<id>/thin    for a thin layer, how many repository layers it lists
//	<id>/image   for a thin layer, its repository layers merged, made when a
//	             layer above it first needs them
//	<id>/mnt     where Get bind-mounts root
type vfs struct {
	home      string
	cvmfsRoot string
	maxLowers int

	mu     sync.Mutex
	counts map[string]int // Get references per layer id seen since start
}

func newVFS(home, cvmfsRoot string, maxLowers int) *vfs {
	return &vfs{home: home, cvmfsRoot: cvmfsRoot, maxLowers: maxLowers, counts: make(map[string]int)}
}

func (d *vfs) dir(id string) string  { return filepath.Join(d.home, id) }
func (d *vfs) root(id string) string { return filepath.Join(d.home, id, "root") }

func (d *vfs) String() string      { return "vfs" }
func (d *vfs) Status() [][2]string { return nil }
func (d *vfs) Capabilities() graphdriver.Capabilities {
	return graphdriver.Capabilities{}
}

func (d *vfs) GetMetadata(id string) (map[string]string, error) {
	if _, err := os.Stat(d.dir(id)); err != nil {
		return nil, err
	}
	return map[string]string{"Root": d.root(id)}, nil
}

func (d *vfs) Exists(id string) bool {
	_, err := os.Stat(d.dir(id))
	return err == nil
}

func (d *vfs) Create(id, parent string, opts graphdriver.CreateOpts) error {
	return d.create(id, parent, opts)
}

func (d *vfs) CreateReadWrite(id, parent string, opts graphdriver.CreateOpts) error {
	return d.create(id, parent, opts)
}

func (d *vfs) create(id, parent string, opts graphdriver.CreateOpts) (retErr error) {
	for key := range opts.StorageOpt {
		return fmt.Errorf("storage option %q is not supported by vfs", key)
	}

	d.mu.Lock()
	defer d.mu.Unlock()

	if parent != "" {
		n, err := d.lowersAbove(parent)
		if err != nil {
			return err
		}
		if n > d.maxLowers {
			return fmt.Errorf("layer %s would have %d layers below it, more than the limit of %d",
				id, n, d.maxLowers)
		}
	}

	if err := os.Mkdir(d.dir(id), 0o700); err != nil {
		return fmt.Errorf("failed to create layer %s: %w", id, err)
	}
	defer func() {
		if retErr != nil {
			os.RemoveAll(d.dir(id))
		}
	}()
	if parent == "" {
		if err := os.Mkdir(d.root(id), 0o755); err != nil {
			return err
		}
		return unix.Chmod(d.root(id), 0o755)
	}

	view, err := d.view(parent)
	if err != nil {
		return err
	}
	if err := continuityfs.CopyDir(d.root(id), view); err != nil {
		return fmt.Errorf("failed to copy layer %s: %w", parent, err)
	}
	return os.WriteFile(filepath.Join(d.dir(id), "parent"), []byte(parent), 0o600)
}

// lowersAbove counts the layers below a layer whose parent is id: each
// regular layer of the chain once, a thin layer as its repository layers.
func (d *vfs) lowersAbove(id string) (int, error) {
	n := 0
	for id != "" {
		if _, err := os.Stat(d.dir(id)); err != nil {
			return 0, fmt.Errorf("parent layer %s: %w", id, err)
		}
		thin, err := os.ReadFile(filepath.Join(d.dir(id), "thin"))
		switch {
		case err == nil:
			layers, err := strconv.Atoi(string(thin))
			if err != nil {
				return 0, err
			}
			n += layers
		case errors.Is(err, fs.ErrNotExist):
			n++
		default:
			return 0, err
		}
		parent, err := os.ReadFile(filepath.Join(d.dir(id), "parent"))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return 0, err
		}
		id = string(parent)
	}
	return n, nil
}

// view is the tree a layer above id starts from: id's tree, or for a thin
// layer the merged repository layers.
func (d *vfs) view(id string) (string, error) {
	if id == "" {
		return "", nil
	}
	if _, err := os.Stat(filepath.Join(d.dir(id), "thin")); errors.Is(err, fs.ErrNotExist) {
		return d.root(id), nil
	}
	image := filepath.Join(d.dir(id), "image")
	if _, err := os.Stat(image); err == nil {
		return image, nil
	}

	raw, err := os.ReadFile(filepath.Join(d.root(id), "thin.json"))
	if err != nil {
		return "", err
	}
	layers, err := parseDescriptor(raw)
	if err != nil {
		return "", err
	}
	tmp := image + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return "", err
	}
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	for i, l := range layers {
		dir, err := resolveURL(d.cvmfsRoot, l.URL)
		if err != nil {
			return "", err
		}
		if info, err := os.Stat(dir); err != nil || !info.IsDir() {
			return "", fmt.Errorf("layer %d (%s) of thin image %s: %s is not a directory at %s; "+
				"check that the repository is mounted", i, l.Digest, id, l.URL, dir)
		}
		// Packing with the overlay converter turns either whiteout format
		// into the AUFS one, which unpacking then honours.
		opts := &archive.TarOptions{WhiteoutFormat: archive.OverlayWhiteoutFormat}
		tr, err := archive.TarWithOptions(dir, opts)
		if err != nil {
			return "", err
		}
		_, err = archive.ApplyUncompressedLayer(tmp, tr, nil)
		tr.Close()
		if err != nil {
			return "", fmt.Errorf("failed to merge %s: %w", l.URL, err)
		}
	}
	return image, os.Rename(tmp, image)
}

func (d *vfs) ApplyDiff(id, parent string, diff io.Reader) (size int64, retErr error) {
	d.mu.Lock()
	defer d.mu.Unlock()

	if _, err := os.Stat(d.dir(id)); err != nil {
		return 0, err
	}
	stage := filepath.Join(d.dir(id), "stage")
	if err := os.RemoveAll(stage); err != nil {
		return 0, err
	}
	defer os.RemoveAll(stage)
	if err := continuityfs.CopyDir(stage, d.root(id)); err != nil {
		return 0, err
	}
	size, err := archive.ApplyUncompressedLayer(stage, diff, nil)
	if err != nil {
		return 0, err
	}

	// A thin image is one layer; vfs looks for thin.json there only.
	if raw, err := os.ReadFile(filepath.Join(stage, "thin.json")); parent == "" && err == nil {
		layers, err := parseDescriptor(raw)
		if err != nil {
			return 0, fmt.Errorf("layer %s: %w", id, err)
		}
		thin := strconv.Itoa(len(layers))
		if err := os.WriteFile(filepath.Join(d.dir(id), "thin"), []byte(thin), 0o600); err != nil {
			return 0, err
		}
	}

	old := filepath.Join(d.dir(id), "old")
	if err := os.Rename(d.root(id), old); err != nil {
		return 0, err
	}
	if err := os.Rename(stage, d.root(id)); err != nil {
		return 0, err
	}
	return size, os.RemoveAll(old)
}

func (d *vfs) changes(id, parent string) ([]archive.Change, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	view, err := d.view(parent)
	if err != nil {
		return nil, err
	}
	return archive.ChangesDirs(d.root(id), view)
}

func (d *vfs) Changes(id, parent string) ([]graphdriver.Change, error) {
	changes, err := d.changes(id, parent)
	if err != nil {
		return nil, err
	}
	out := make([]graphdriver.Change, 0, len(changes))
	for _, c := range changes {
		out = append(out, graphdriver.Change{Path: c.Path, Kind: graphdriver.ChangeKind(c.Kind)})
	}
	return out, nil
}

func (d *vfs) Diff(id, parent string) (io.ReadCloser, error) {
	changes, err := d.changes(id, parent)
	if err != nil {
		return nil, err
	}
	return archive.ExportChanges(d.root(id), changes, user.IdentityMapping{})
}

func (d *vfs) DiffSize(id, parent string) (int64, error) {
	changes, err := d.changes(id, parent)
	if err != nil {
		return 0, err
	}
	return archive.ChangesSize(d.root(id), changes), nil
}

// refs returns the references to id, counting a mount left by an earlier
// instance as one the first time the layer is seen.
func (d *vfs) refs(id string) (int, error) {
	if n, ok := d.counts[id]; ok {
		return n, nil
	}
	mounted, err := mountinfo.Mounted(filepath.Join(d.dir(id), "mnt"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}
	if mounted {
		return 1, nil
	}
	return 0, nil
}

func (d *vfs) Get(id, mountLabel string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()

	if _, err := os.Stat(d.dir(id)); err != nil {
		return "", err
	}
	mnt := filepath.Join(d.dir(id), "mnt")
	n, err := d.refs(id)
	if err != nil {
		return "", err
	}
	if n == 0 {
		if err := os.MkdirAll(mnt, 0o755); err != nil {
			return "", err
		}
		if err := unix.Mount(d.root(id), mnt, "", unix.MS_BIND, ""); err != nil {
			return "", fmt.Errorf("failed to bind-mount %s on %s: %w", d.root(id), mnt, err)
		}
	}
	d.counts[id] = n + 1
	return mnt, nil
}

func (d *vfs) Put(id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()

	n, err := d.refs(id)
	if err != nil || n == 0 {
		return err
	}
	d.counts[id] = n - 1
	if n > 1 {
		return nil
	}
	mnt := filepath.Join(d.dir(id), "mnt")
	if err := unix.Unmount(mnt, 0); err != nil {
		return fmt.Errorf("failed to unmount %s: %w", mnt, err)
	}
	return nil
}

func (d *vfs) Remove(id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()

	mnt := filepath.Join(d.dir(id), "mnt")
	if mounted, _ := mountinfo.Mounted(mnt); mounted {
		if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("failed to unmount %s: %w", mnt, err)
		}
	}
	delete(d.counts, id)
	return os.RemoveAll(d.dir(id))
}

func (d *vfs) Cleanup() error {
	d.mu.Lock()
	defer d.mu.Unlock()

	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(d.home))
	if err != nil {
		return err
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].Mountpoint) > len(mounts[j].Mountpoint) })
	var errs []error
	for _, m := range mounts {
		if err := unix.Unmount(m.Mountpoint, 0); err != nil {
			errs = append(errs, fmt.Errorf("failed to unmount %s: %w", m.Mountpoint, err))
		}
	}
	d.counts = make(map[string]int)
	return errors.Join(errs...)
}

// thinDescriptor holds the fields of thin.json that vfs uses.
type thinDescriptor struct {
	MinVersion string       `json:"min_version"`
	Layers     *[]thinLayer `json:"layers"`
}

type thinLayer struct {
	Digest string `json:"digest"`
	URL    string `json:"url"`
}

// parseDescriptor checks thin.json (rule 5) and the syntax of its URLs
// (rule 3) and returns its layers, base first.
func parseDescriptor(raw []byte) ([]thinLayer, error) {
	var desc thinDescriptor
	if err := json.Unmarshal(raw, &desc); err != nil {
		return nil, fmt.Errorf("invalid thin.json: %w", err)
	}
	if desc.Layers == nil {
		return nil, errors.New("invalid thin.json: field layers is missing")
	}
	if desc.MinVersion != "" && !readable(desc.MinVersion) {
		return nil, fmt.Errorf("thin.json has min_version %s, newer than this reader's version 1.0",
			desc.MinVersion)
	}
	for _, l := range *desc.Layers {
		if _, err := resolveURL("/", l.URL); err != nil {
			return nil, fmt.Errorf("invalid thin.json: %w", err)
		}
	}
	return *desc.Layers, nil
}

// readable reports whether a reader of version 1.0 may read a descriptor
// with min_version v.
func readable(v string) bool {
	major, minor, ok := strings.Cut(v, ".")
	if !ok {
		return false
	}
	ma, err1 := strconv.Atoi(major)
	mi, err2 := strconv.Atoi(minor)
	return err1 == nil && err2 == nil && (ma < 1 || ma == 1 && mi == 0)
}

// resolveURL turns a layer URL into its directory below root (rule 3).
func resolveURL(root, raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("layer URL %s: %w", raw, err)
	}
	if u.Scheme != "cvmfs" {
		return "", fmt.Errorf("layer URL %s: scheme %q is not cvmfs", raw, u.Scheme)
	}
	if !repositoryName(u.Host) {
		return "", fmt.Errorf("layer URL %s: %q is not a repository name", raw, u.Host)
	}
	depth := 0
	for _, seg := range strings.Split(u.Path, "/") {
		switch seg {
		case "", ".":
		case "..":
			depth--
			if depth < 0 {
				return "", fmt.Errorf("layer URL %s: path leaves the repository", raw)
			}
		default:
			depth++
		}
	}
	if depth == 0 {
		return "", fmt.Errorf("layer URL %s: path is empty", raw)
	}
	return filepath.Join(root, u.Host, filepath.FromSlash(path.Clean(u.Path))), nil
}

// repositoryName reports whether name is host-like: letters, digits, '.',
// '-' and '_', and not dots alone.
func repositoryName(name string) bool {
	hostLike := func(r rune) bool {
		return r == '.' || r == '-' || r == '_' ||
			r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
	}
	return strings.Trim(name, ".") != "" && strings.TrimFunc(name, hostLike) == ""
}
