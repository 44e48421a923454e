package aufs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// The emulator stands in for the kernel's aufs so that the conformance
// suite and the mount tests run for real on kernels without it.
//
// An emulated mount is a tmpfs on the target, filled with a copy of the
// union of the branches as aufs shows it: the upper branch wins, ".wh."
// whiteouts hide entries of the branches below them, ".wh..wh..opq" hides
// what the branches below hold in its directory, a non-directory hides the
// branches below at its path, and no marker is ever shown. Each remount
// that appends branches builds the copy again. Being a real mount, it shows
// in the mount table, so the driver's reference counts are reconciled after
// a restart as with aufs.
//
// Writes made through the target go to the writable branch, the way aufs
// writes them (a changed file copied up whole, a deletion as a ".wh."
// whiteout, a directory replaced by a new one marked opaque), when the
// mount is flushed (the driver does that before it reads the branch of a
// mounted layer) or unmounted. Changes are found by inode number and
// change time: after each copy the emulator waits until the clock has
// passed every change time it recorded, so that any later change shows.
//
// Mount options are checked the way aufs checks them: an unknown option,
// a branch that is missing, given twice or inside another, more branches
// than the emulated aufs takes, or options longer than a page fail the
// call. A hard link made through the mount is written to the branch as a
// copy unless both names changed.
type emulator struct {
	// maxBranches is the branch limit of the emulated aufs.
	maxBranches int
	// refuse lists options the emulated aufs does not know, to play an
	// older one.
	refuse map[string]bool

	mu     sync.Mutex
	mounts map[string]*emuMount // by target
}

// emulatorSource is the source of the tmpfs mounts of the emulator, as the
// mount table shows it.
const emulatorSource = "aufs-emulator"

func newEmulator(maxBranches int) *emulator {
	return &emulator{maxBranches: maxBranches, refuse: map[string]bool{}, mounts: map[string]*emuMount{}}
}

type emuBranch struct {
	dir, perm string
}

type emuMount struct {
	branches []emuBranch // top first
	options  []string
	// stamps is what the target held when it was last built or flushed.
	stamps map[string]stamp
}

// stamp identifies the state of one entry of a target.
type stamp struct {
	ino   uint64
	ctime unix.Timespec
}

// branches returns the branches of the mount on target, top first, as
// "dir=perm", or nil when the emulator has no mount there.
func (e *emulator) branches(target string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := e.mounts[target]
	if m == nil {
		return nil
	}
	out := make([]string, 0, len(m.branches))
	for _, b := range m.branches {
		out = append(out, b.dir+"="+b.perm)
	}
	return out
}

// Mount implements mounter.
func (e *emulator) Mount(source, target, fstype string, flags uintptr, data string) error {
	if fstype != "aufs" {
		return unix.ENODEV
	}
	if len(data) >= os.Getpagesize() {
		// The kernel would cut the options at a page.
		return unix.EINVAL
	}
	cwd, err := unix.Getwd()
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if flags == unix.MS_REMOUNT {
		return e.remount(target, data, cwd)
	}
	if flags != 0 {
		return unix.EINVAL
	}

	if m := e.mounts[target]; m != nil {
		if mounted, _ := mountinfo.Mounted(target); mounted {
			return unix.EBUSY
		}
		// Unmounted behind the emulator's back, as a test's teardown does.
		delete(e.mounts, target)
	}
	m := &emuMount{}
	for _, opt := range strings.Split(data, ",") {
		switch key, value, _ := strings.Cut(opt, "="); {
		case strings.HasPrefix(opt, "br:"), key == "br", key == "dirs":
			if len(m.branches) > 0 {
				return unix.EINVAL
			}
			list := strings.TrimPrefix(opt, "br:")
			if key == "br" || key == "dirs" {
				list = value
			}
			for i, spec := range strings.Split(list, ":") {
				b, err := parseBranch(spec, cwd, i == 0)
				if err != nil {
					return err
				}
				m.branches = append(m.branches, b)
			}
		case opt == "dio", opt == "dirperm1", key == "xino", key == "context":
			if e.refuse[key] {
				return unix.EINVAL
			}
			m.options = append(m.options, opt)
		default:
			return unix.EINVAL
		}
	}
	if err := e.checkBranches(m.branches); err != nil {
		return err
	}

	if err := unix.Mount(emulatorSource, target, "tmpfs", 0, "mode=0755"); err != nil {
		return err
	}
	if err := m.build(target); err != nil {
		return errors.Join(err, unix.Unmount(target, unix.MNT_DETACH))
	}
	e.mounts[target] = m
	return nil
}

// remount appends branches to the mount on target.
func (e *emulator) remount(target, data, cwd string) error {
	m := e.mounts[target]
	if m == nil {
		return unix.EINVAL
	}
	var added []emuBranch
	for _, opt := range strings.Split(data, ",") {
		switch key, value, _ := strings.Cut(opt, "="); {
		case strings.HasPrefix(opt, "append:"), key == "append":
			spec := strings.TrimPrefix(opt, "append:")
			if key == "append" {
				spec = value
			}
			b, err := parseBranch(spec, cwd, false)
			if err != nil {
				return err
			}
			added = append(added, b)
		case key == "context":
		default:
			return unix.EINVAL
		}
	}
	all := append(append([]emuBranch{}, m.branches...), added...)
	if err := e.checkBranches(all); err != nil {
		return err
	}
	if err := m.sync(target); err != nil {
		return err
	}
	m.branches = all
	return m.build(target)
}

// parseBranch reads "dir=perm"; a branch without permission is writable
// when it is the first, read-only otherwise.
func parseBranch(spec, cwd string, first bool) (emuBranch, error) {
	dir, perm, ok := strings.Cut(spec, "=")
	if !ok {
		perm = "ro"
		if first {
			perm = "rw"
		}
	}
	switch perm {
	case "rw", "ro", "ro+wh", "rr", "rr+wh":
	default:
		return emuBranch{}, unix.EINVAL
	}
	if dir == "" {
		return emuBranch{}, unix.EINVAL
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(cwd, dir)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return emuBranch{}, unix.EINVAL
	}
	if !fi.IsDir() {
		return emuBranch{}, unix.ENOTDIR
	}
	return emuBranch{dir: filepath.Clean(dir), perm: perm}, nil
}

// checkBranches refuses what aufs refuses: no branch, too many, a writable
// branch below the top one, a branch given twice or inside another.
func (e *emulator) checkBranches(branches []emuBranch) error {
	if len(branches) == 0 {
		return unix.EINVAL
	}
	if len(branches) > e.maxBranches {
		return unix.E2BIG
	}
	for i, a := range branches {
		if i > 0 && a.perm == "rw" {
			return unix.EINVAL
		}
		for _, b := range branches[i+1:] {
			if a.dir == b.dir || strings.HasPrefix(a.dir, b.dir+"/") || strings.HasPrefix(b.dir, a.dir+"/") {
				return unix.EINVAL
			}
		}
	}
	return nil
}

// Unmount implements mounter: the writes made through the target reach
// the writable branch, then the target is unmounted.
func (e *emulator) Unmount(target string, flags int) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := e.mounts[target]
	if m != nil && flags&unix.MNT_DETACH == 0 {
		if mounted, _ := mountinfo.Mounted(target); mounted {
			if err := m.sync(target); err != nil {
				return err
			}
		}
	}
	if err := unix.Unmount(target, flags); err != nil {
		return err
	}
	delete(e.mounts, target)
	return nil
}

// Flush implements flusher.
func (e *emulator) Flush(target string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := e.mounts[target]
	if m == nil {
		return nil
	}
	if mounted, _ := mountinfo.Mounted(target); !mounted {
		return nil
	}
	return m.sync(target)
}

// build fills target with the union of the branches.
func (m *emuMount) build(target string) error {
	entries, err := os.ReadDir(target)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(target, e.Name())); err != nil {
			return err
		}
	}
	dirs := make([]string, 0, len(m.branches))
	for _, b := range m.branches {
		dirs = append(dirs, b.dir)
	}
	c := newCopier()
	if err := c.merge(target, dirs); err != nil {
		return fmt.Errorf("emulated aufs: %w", err)
	}
	if err := copyMeta(dirs[0], target); err != nil {
		return err
	}
	return m.record(target)
}

// record notes what target holds now, and waits until any later change of
// it gets a later change time.
func (m *emuMount) record(target string) error {
	stamps := make(map[string]stamp)
	var latest unix.Timespec
	err := filepath.WalkDir(target, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return err
		}
		rel, err := filepath.Rel(target, path)
		if err != nil {
			return err
		}
		stamps[rel] = stamp{ino: st.Ino, ctime: st.Ctim}
		if st.Ctim.Nano() > latest.Nano() {
			latest = st.Ctim
		}
		return nil
	})
	if err != nil {
		return err
	}
	m.stamps = stamps
	// Change times come from the kernel's coarse clock, which moves once
	// a tick: a change made within the tick of the copy would otherwise
	// keep the time the copy left.
	for {
		var now unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_REALTIME_COARSE, &now); err != nil {
			return err
		}
		if now.Nano() > latest.Nano() {
			return nil
		}
		time.Sleep(time.Millisecond)
	}
}

// sync writes what changed in target since it was recorded into the
// writable branch, as aufs would have written it, and records the target
// again.
func (m *emuMount) sync(target string) error {
	if m.branches[0].perm != "rw" {
		return nil
	}
	w := &writeBack{
		target:  target,
		rw:      m.branches[0].dir,
		touched: make(map[string]bool),
		copier:  newCopier(),
	}
	for _, b := range m.branches[1:] {
		w.lower = append(w.lower, b.dir)
	}

	seen := make(map[string]bool)
	replaced := make(map[string]bool)
	err := filepath.WalkDir(target, func(path string, entry fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(target, path)
		if err != nil {
			return err
		}
		seen[rel] = true
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return err
		}
		old, ok := m.stamps[rel]
		switch {
		case rel == ".":
			if st.Ctim != old.ctime {
				w.touched["."] = true
			}
		case !ok || old.ino != st.Ino:
			replaced[rel] = true
			if err := w.replace(rel, entry.IsDir()); err != nil {
				return err
			}
			if entry.IsDir() {
				return filepath.SkipDir
			}
		case st.Ctim != old.ctime:
			if entry.IsDir() {
				return w.touchDir(rel)
			}
			return w.copyUp(rel)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("emulated aufs: %w", err)
	}

	gone := make([]string, 0)
	for rel := range m.stamps {
		if !seen[rel] {
			gone = append(gone, rel)
		}
	}
	sort.Strings(gone)
	for _, rel := range gone {
		if covered(rel, seen, replaced) {
			continue
		}
		if err := w.remove(rel); err != nil {
			return fmt.Errorf("emulated aufs: %w", err)
		}
	}
	if err := w.finish(); err != nil {
		return fmt.Errorf("emulated aufs: %w", err)
	}
	return m.record(target)
}

// covered reports whether the deletion of rel is already written by the
// deletion or replacement of one of its parents.
func covered(rel string, seen, replaced map[string]bool) bool {
	for p := filepath.Dir(rel); p != "."; p = filepath.Dir(p) {
		if !seen[p] || replaced[p] {
			return true
		}
	}
	return false
}

// writeBack writes the changes of one sync into the writable branch.
type writeBack struct {
	target, rw string
	lower      union
	// touched are the branch's directories created or changed, whose
	// attributes are copied from the target at the end.
	touched map[string]bool
	copier  *copier
}

// replace writes an entry that is new at rel, or replaced the one that was
// there, and everything under it; a new directory over one the lower
// branches show is made opaque, as aufs makes it.
func (w *writeBack) replace(rel string, dir bool) error {
	if err := w.clear(rel); err != nil {
		return err
	}
	if !dir {
		return w.copier.copyEntry(filepath.Join(w.target, rel), filepath.Join(w.rw, rel))
	}
	if err := w.copier.copyTree(filepath.Join(w.target, rel), filepath.Join(w.rw, rel)); err != nil {
		return err
	}
	if fi, ok, err := w.lower.lookup(rel); err != nil {
		return err
	} else if ok && fi.IsDir() {
		if err := writeMarker(filepath.Join(w.rw, rel, opaqueMarker)); err != nil {
			return err
		}
	}
	return nil
}

// copyUp writes a changed file, whole.
func (w *writeBack) copyUp(rel string) error {
	if err := w.clear(rel); err != nil {
		return err
	}
	return w.copier.copyEntry(filepath.Join(w.target, rel), filepath.Join(w.rw, rel))
}

// clear makes room in the branch for the entry at rel: its parents exist,
// and neither an old entry nor a whiteout is in the way.
func (w *writeBack) clear(rel string) error {
	if err := w.parents(rel); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(w.rw, rel)); err != nil {
		return err
	}
	err := os.Remove(filepath.Join(w.rw, filepath.Dir(rel), whPrefix+filepath.Base(rel)))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	w.touched[filepath.Dir(rel)] = true
	return nil
}

// touchDir copies a changed directory into the branch.
func (w *writeBack) touchDir(rel string) error {
	if err := w.parents(rel); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(w.rw, rel), 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	w.touched[rel] = true
	return nil
}

// remove writes the deletion of rel: gone from the branch, and whited out
// when the lower branches show it.
func (w *writeBack) remove(rel string) error {
	if err := os.RemoveAll(filepath.Join(w.rw, rel)); err != nil {
		return err
	}
	_, below, err := w.lower.lookup(rel)
	if err != nil || !below {
		return err
	}
	if err := w.parents(rel); err != nil {
		return err
	}
	w.touched[filepath.Dir(rel)] = true
	return writeMarker(filepath.Join(w.rw, filepath.Dir(rel), whPrefix+filepath.Base(rel)))
}

// parents creates the parent directories of rel in the branch, as aufs
// copies them up before it writes below them.
func (w *writeBack) parents(rel string) error {
	var chain []string
	for p := filepath.Dir(rel); p != "."; p = filepath.Dir(p) {
		chain = append(chain, p)
	}
	for i := len(chain) - 1; i >= 0; i-- {
		p := chain[i]
		fi, err := os.Lstat(filepath.Join(w.rw, p))
		switch {
		case err == nil && fi.IsDir():
			continue
		case err == nil:
			return fmt.Errorf("%s is not a directory in the writable branch", p)
		case !errors.Is(err, fs.ErrNotExist):
			return err
		}
		if err := os.Mkdir(filepath.Join(w.rw, p), 0o700); err != nil {
			return err
		}
		w.touched[p] = true
	}
	return nil
}

// finish gives the touched directories of the branch the attributes the
// target shows, deepest first.
func (w *writeBack) finish() error {
	dirs := make([]string, 0, len(w.touched))
	for rel := range w.touched {
		dirs = append(dirs, rel)
	}
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	for _, rel := range dirs {
		if err := copyMeta(filepath.Join(w.target, rel), filepath.Join(w.rw, rel)); err != nil {
			return err
		}
	}
	return nil
}

// writeMarker writes an empty AUFS marker file.
func writeMarker(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, whiteoutMode)
	if err != nil {
		return err
	}
	return f.Close()
}

// copier copies entries with their metadata, keeping hard links that share
// an inode in the source as hard links in the copy.
type copier struct {
	links map[[2]uint64]string
}

func newCopier() *copier { return &copier{links: make(map[[2]uint64]string)} }

// merge fills dst with the union of the directories srcs, top first.
func (c *copier) merge(dst string, srcs []string) error {
	type item struct {
		src  string
		dirs []string // the directories to merge, for a directory
		open bool     // whether lower directories still merge into it
	}
	items := make(map[string]*item)
	var order []string
	hidden := make(map[string]bool)
	for _, src := range srcs {
		entries, err := os.ReadDir(src)
		if err != nil {
			return err
		}
		opaque := false
		var whited []string
		for _, e := range entries {
			name := e.Name()
			switch {
			case name == opaqueMarker:
				opaque = true
				continue
			case strings.HasPrefix(name, whMetaPrefix):
				continue
			case strings.HasPrefix(name, whPrefix):
				whited = append(whited, strings.TrimPrefix(name, whPrefix))
				continue
			case hidden[name]:
				continue
			}
			path := filepath.Join(src, name)
			it := items[name]
			switch {
			case it == nil:
				it = &item{src: path, open: e.IsDir()}
				if e.IsDir() {
					it.dirs = []string{path}
				}
				items[name] = it
				order = append(order, name)
			case !it.open:
			case e.IsDir():
				it.dirs = append(it.dirs, path)
			default:
				it.open = false
			}
		}
		for _, name := range whited {
			hidden[name] = true
			if it := items[name]; it != nil {
				it.open = false
			}
		}
		if opaque {
			break
		}
	}

	for _, name := range order {
		it := items[name]
		to := filepath.Join(dst, name)
		if it.dirs == nil {
			if err := c.copyEntry(it.src, to); err != nil {
				return err
			}
			continue
		}
		if err := os.Mkdir(to, 0o700); err != nil {
			return err
		}
		if err := c.merge(to, it.dirs); err != nil {
			return err
		}
		if err := copyMeta(it.src, to); err != nil {
			return err
		}
	}
	return nil
}

// copyTree copies the directory src and everything under it to dst.
func (c *copier) copyTree(src, dst string) error {
	if err := os.Mkdir(dst, 0o700); err != nil {
		return err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		from, to := filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())
		if e.IsDir() {
			err = c.copyTree(from, to)
		} else {
			err = c.copyEntry(from, to)
		}
		if err != nil {
			return err
		}
	}
	return copyMeta(src, dst)
}

// copyEntry copies one entry that is not a directory.
func (c *copier) copyEntry(src, dst string) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFREG && st.Nlink > 1 {
		key := [2]uint64{st.Dev, st.Ino}
		if first, ok := c.links[key]; ok {
			return os.Link(first, dst)
		}
		c.links[key] = dst
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		if err := copyContent(src, dst); err != nil {
			return err
		}
	case unix.S_IFLNK:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
		if err := unix.Mknod(dst, st.Mode, int(st.Rdev)); err != nil {
			return err
		}
	default:
		// Sockets do not survive a copy; aufs would show them, but no
		// layer holds one.
		return nil
	}
	return copyMeta(src, dst)
}

func copyContent(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// copyMeta gives dst the owner, mode, extended attributes and times of src.
func copyMeta(src, dst string) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return err
	}
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	// After the owner: chown clears the set-id bits.
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		if err := unix.Chmod(dst, st.Mode&0o7777); err != nil {
			return err
		}
	}
	if err := copyXattrs(src, dst, func(string) bool { return true }); err != nil {
		return err
	}
	return copyTimes(src, dst)
}
