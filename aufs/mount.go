package aufs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// reservedChars separate branches (':'), options (',') and a branch from
// its permission ('=') in aufs mount options; a path holding one cannot be
// named there.
const reservedChars = ":,="

// Branch permissions, as aufs spells them.
const (
	permRW   = "rw"
	permROWH = "ro+wh" // read-only, may hold whiteouts aufs must honour
)

// mountCall is one mount system call of a layer's mount.
type mountCall struct {
	flags uintptr
	data  string
}

// Get implements graphdriver.Driver. A layer without read-only branches (a
// base layer, a thin layer, a layer right above an empty thin image) is
// served from its diff directory; any other is mounted on mnt/<id> at its
// first Get and shared by later ones. With the internal mount method the
// first Get of a layer above a thin layer also acquires the thin image's
// repositories; a Get that fails holds none.
func (d *Driver) Get(id, mountLabel string) (_ string, retErr error) {
	if err := validateID(id); err != nil {
		return "", err
	}
	s := d.state(id)
	s.mu.Lock()
	defer s.mu.Unlock()

	if !d.Exists(id) {
		return "", fmt.Errorf("layer %s does not exist", id)
	}
	st, err := d.mountStack(id)
	if err != nil {
		return "", err
	}
	if len(st.ro) == 0 {
		return d.diffDir(id), nil
	}

	target := d.mntDir(id)
	if err := d.loadRefs(s, id); err != nil {
		return "", err
	}
	if s.refs > 0 {
		s.refs++
		return target, d.saveRefs(s, id)
	}

	// The repositories must be mounted before prepareThin checks the
	// layer directories in them.
	repos, err := d.acquireRepositories("mount", id, st)
	if err != nil {
		return "", err
	}
	defer func() {
		if retErr != nil {
			retErr = errors.Join(retErr, d.releaseRepositories(id, repos))
		}
	}()
	if st, err = d.prepareThin(id, st); err != nil {
		return "", err
	}
	if err := d.checkBranchCount("mount", id, st); err != nil {
		return "", err
	}
	rw := branch{dir: d.diffDir(id), rel: filepath.Join(diffDirName, id)}
	if err := checkOverlap(id, append([]branch{rw}, st.ro...)); err != nil {
		return "", err
	}
	calls, relative, err := d.mountCalls(id, rw, st.ro, mountLabel)
	if err != nil {
		return "", err
	}
	if err := os.Mkdir(target, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("failed to create mount point of layer %s: %w", id, err)
	}
	if err := d.mountAufs(target, calls, relative); err != nil {
		return "", fmt.Errorf("failed to mount layer %s: %w", id, err)
	}
	defer func() {
		if retErr != nil {
			d.unmount(target)
		}
	}()
	s.refs, s.repos = 1, repos
	if err := d.saveRefs(s, id); err != nil {
		s.refs, s.repos = 0, nil
		return "", err
	}
	return target, nil
}

// Put implements graphdriver.Driver. The last Put of a mounted layer
// unmounts it and releases the repositories it held; the mount point
// stays, as in Docker's aufs layout. A Put without a matching Get is
// harmless.
func (d *Driver) Put(id string) error {
	if err := validateID(id); err != nil {
		return err
	}
	s := d.state(id)
	s.mu.Lock()
	defer s.mu.Unlock()

	if err := d.loadRefs(s, id); err != nil {
		return err
	}
	if s.refs > 1 {
		s.refs--
		return d.saveRefs(s, id)
	}
	s.refs = 0
	if err := d.unmountIfMounted(d.mntDir(id)); err != nil {
		return fmt.Errorf("failed to unmount layer %s: %w", id, err)
	}
	repos := s.repos
	s.repos = nil
	return errors.Join(d.saveRefs(s, id), d.releaseRepositories(id, repos))
}

// mountCalls builds the mount system calls that mount layer id with the
// writable branch rw over the read-only branches ro (top first), and says
// whether the paths in them are relative to home. The first call names as
// many branches as fit in a page with the other options; each following
// call is a remount that appends as many more as fit, in order.
func (d *Driver) mountCalls(id string, rw branch, ro []branch, mountLabel string) ([]mountCall, bool, error) {
	relative := strings.ContainsAny(rw.dir, reservedChars)
	for _, b := range ro {
		relative = relative || strings.ContainsAny(b.dir, reservedChars)
	}
	name := func(b branch) (string, error) {
		switch {
		case relative && b.rel != "":
			return b.rel, nil
		case strings.ContainsAny(b.dir, reservedChars):
			return "", fmt.Errorf("cannot mount layer %s: branch %s holds one of %q, which aufs mount options cannot carry",
				id, describeBranch(b), reservedChars)
		default:
			return b.dir, nil
		}
	}

	opts := []string{"dio"}
	if d.kernel.xino != "" {
		opts = append(opts, "xino="+d.kernel.xino)
	}
	if d.kernel.dirperm1 {
		opts = append(opts, "dirperm1")
	}
	label := ""
	if mountLabel != "" {
		label = ",context=" + strconv.Quote(mountLabel)
	}
	// The option string and its terminating NUL must fit in one page.
	limit := d.kernel.pageSize - 1

	rwName, err := name(rw)
	if err != nil {
		return nil, false, err
	}
	first := "br:" + rwName + "=" + permRW
	tail := "," + strings.Join(opts, ",") + label
	if len(first)+len(tail) > limit {
		return nil, false, fmt.Errorf("cannot mount layer %s: the path of its writable branch %s is too long for a mount option", id, rw.dir)
	}
	i := 0
	for ; i < len(ro); i++ {
		n, err := name(ro[i])
		if err != nil {
			return nil, false, err
		}
		item := ":" + n + "=" + permROWH
		if len(first)+len(item)+len(tail) > limit {
			break
		}
		first += item
	}
	calls := []mountCall{{flags: 0, data: first + tail}}

	for i < len(ro) {
		var items []string
		size := len(label)
		for ; i < len(ro); i++ {
			n, err := name(ro[i])
			if err != nil {
				return nil, false, err
			}
			item := "append:" + n + "=" + permROWH
			sep := 0
			if len(items) > 0 {
				sep = 1
			}
			if size+sep+len(item) > limit {
				break
			}
			items = append(items, item)
			size += sep + len(item)
		}
		if len(items) == 0 {
			return nil, false, fmt.Errorf("cannot mount layer %s: the path of branch %s is too long for a mount option", id, describeBranch(ro[i]))
		}
		calls = append(calls, mountCall{flags: unix.MS_REMOUNT, data: strings.Join(items, ",") + label})
	}
	return calls, relative, nil
}

// describeBranch names a branch for messages: its path, and the URL of a
// repository layer.
func describeBranch(b branch) string {
	if b.repo != nil {
		return fmt.Sprintf("%s (%s)", b.dir, b.repo.URL)
	}
	return b.dir
}

// mountAufs makes the calls on target, from home when their paths are
// relative. When a remount fails, the part already mounted is undone.
func (d *Driver) mountAufs(target string, calls []mountCall, relative bool) error {
	d.mountMu.Lock()
	defer d.mountMu.Unlock()

	dir := ""
	if relative {
		dir = d.home
	}
	mount := func() error {
		for i, c := range calls {
			if err := d.mounter.Mount("none", target, "aufs", c.flags, c.data); err != nil {
				merr := &MountError{Source: "none", Target: target, FSType: "aufs", Flags: c.flags, Data: c.data, Dir: dir, Err: err}
				if i > 0 {
					return errors.Join(merr, d.unmount(target))
				}
				return merr
			}
		}
		return nil
	}
	if !relative {
		return mount()
	}
	return inPrivateFS(dir, mount)
}

// loadRefs reconciles a layer's reference count with the mount table the
// first time the driver touches the layer. A plugin restarted by dockerd
// finds its layers still mounted: a mounted layer keeps the count recorded
// on disk (at least one), an unmounted one starts from zero.
func (d *Driver) loadRefs(s *layerState, id string) error {
	if s.loaded {
		return nil
	}
	target := d.mntDir(id)
	mounted, err := mountinfo.Mounted(target)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("failed to check whether %s is mounted: %w", target, err)
	}
	s.refs = 0
	if mounted {
		s.refs = 1
		if data, err := os.ReadFile(d.mountsFile(id)); err == nil {
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
func (d *Driver) saveRefs(s *layerState, id string) error {
	path := d.mountsFile(id)
	if s.refs == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("failed to record mount count of layer %s: %w", id, err)
		}
		return nil
	}
	if err := writeFileAtomic(path, []byte(strconv.Itoa(s.refs))); err != nil {
		return fmt.Errorf("failed to record mount count of layer %s: %w", id, err)
	}
	return nil
}
