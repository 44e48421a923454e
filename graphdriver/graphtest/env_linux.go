package graphtest

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/graphdriver"
)

// env is one case's world: a driver on a home of its own, a CernVM-FS root,
// and the cleanup that leaves nothing mounted behind.
type env struct {
	t         *testing.T
	opts      Options
	newDriver Factory

	home      string
	scratch   string // a directory beside the CernVM-FS root, for decoys
	cvmfsRoot string

	d         graphdriver.Driver
	cleanedUp bool
	initial   map[string]bool // paths under home right after the driver was built
}

func newEnv(t *testing.T, newDriver Factory, opts Options) *env {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("graphtest needs root: backends mount file systems, " +
			"and the fixtures set owners and make device nodes")
	}

	e := &env{t: t, opts: opts, newDriver: newDriver}
	e.home = realPath(t, t.TempDir())
	e.scratch = realPath(t, t.TempDir())
	e.cvmfsRoot = filepath.Join(e.scratch, "cvmfs")
	if err := os.Mkdir(e.cvmfsRoot, 0o755); err != nil {
		t.Fatal(err)
	}

	// Registered after TempDir, so it runs before the directories go.
	t.Cleanup(e.teardown)

	e.d = newDriver(t, e.home, e.cvmfsRoot)
	e.initial = e.listHome()
	return e
}

func realPath(t testing.TB, p string) string {
	t.Helper()
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return real
}

// teardown fails a case that passed but left a mount under home, or made
// one beside the CernVM-FS root, which no driver has reason to touch; shuts
// the driver down as dockerd does; and unmounts whatever is still there.
func (e *env) teardown() {
	t := e.t
	if left := e.mounts(); len(left) > 0 && !t.Failed() {
		t.Errorf("the case left mounted: %s", strings.Join(mountpoints(left), ", "))
	}
	if left := mountsUnder(t, e.scratch); len(left) > 0 {
		t.Errorf("the driver mounted in the CernVM-FS root: %s", strings.Join(mountpoints(left), ", "))
	}
	if e.d != nil && !e.cleanedUp {
		if err := e.d.Cleanup(); err != nil {
			t.Errorf("Cleanup failed: %v", err)
		}
	}
	unmountAll(t, e.home)
	unmountAll(t, e.scratch)
}

// restart builds a new driver on the same home and drops the old one without
// Cleanup, as when the plugin is killed and started again.
func (e *env) restart() {
	e.t.Helper()
	e.d = e.newDriver(e.t, e.home, e.cvmfsRoot)
}

// cleanup calls the driver's Cleanup, which teardown then does not repeat.
func (e *env) cleanup() {
	e.t.Helper()
	e.cleanedUp = true
	if err := e.d.Cleanup(); err != nil {
		e.t.Fatalf("Cleanup failed: %v", err)
	}
}

// id turns a readable layer name into a layer id shaped like dockerd's: 64
// hex digits, with dockerd's "-init" suffix kept for init layers, so that a
// backend meets ids of the real length.
func id(name string) string {
	if name == "" {
		return ""
	}
	if base, ok := strings.CutSuffix(name, "-init"); ok {
		return id(base) + "-init"
	}
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:])
}

func (e *env) create(name, parent string) {
	e.t.Helper()
	if err := e.d.Create(id(name), id(parent), graphdriver.CreateOpts{}); err != nil {
		e.t.Fatalf("Create(%s, parent %q) failed: %v", name, parent, err)
	}
}

func (e *env) createRW(name, parent string) {
	e.t.Helper()
	if err := e.d.CreateReadWrite(id(name), id(parent), graphdriver.CreateOpts{}); err != nil {
		e.t.Fatalf("CreateReadWrite(%s, parent %q) failed: %v", name, parent, err)
	}
}

// apply runs ApplyDiff with the tar of entries and returns the size it
// reports.
func (e *env) apply(name, parent string, entries ...Entry) int64 {
	e.t.Helper()
	size, err := e.d.ApplyDiff(id(name), id(parent), bytes.NewReader(tarOf(e.t, entries...)))
	if err != nil {
		e.t.Fatalf("ApplyDiff(%s, parent %q) failed: %v", name, parent, err)
	}
	return size
}

// layer makes a read-only layer from entries, as `docker pull` does.
func (e *env) layer(name, parent string, entries ...Entry) {
	e.t.Helper()
	e.create(name, parent)
	e.apply(name, parent, entries...)
}

// get mounts a layer and hands its mount to Options.InspectMount.
func (e *env) get(name string) string {
	e.t.Helper()
	dir, err := e.d.Get(id(name), "")
	if err != nil {
		e.t.Fatalf("Get(%s) failed: %v", name, err)
	}
	if e.opts.InspectMount != nil {
		if m := mountAt(e.t, dir); m != nil {
			e.opts.InspectMount(e.t, id(name), m)
		}
	}
	return dir
}

func (e *env) put(name string) {
	e.t.Helper()
	if err := e.d.Put(id(name)); err != nil {
		e.t.Fatalf("Put(%s) failed: %v", name, err)
	}
}

// check mounts a layer, compares its tree with want and releases it.
func (e *env) check(name string, want ...Entry) {
	e.t.Helper()
	dir := e.get(name)
	if !CheckTree(e.t, dir, want...) {
		e.t.Logf("that was layer %s (%s)", name, id(name))
	}
	e.put(name)
}

func (e *env) remove(names ...string) {
	e.t.Helper()
	for _, name := range names {
		if err := e.d.Remove(id(name)); err != nil {
			e.t.Fatalf("Remove(%s) failed: %v", name, err)
		}
		if e.d.Exists(id(name)) {
			e.t.Errorf("layer %s exists after Remove", name)
		}
	}
}

func (e *env) mounts() []*mountinfo.Info {
	e.t.Helper()
	return mountsUnder(e.t, e.home)
}

// assertNoMounts fails the case when anything is mounted under home.
func (e *env) assertNoMounts(when string) {
	e.t.Helper()
	if left := e.mounts(); len(left) > 0 {
		e.t.Errorf("%s, still mounted under home: %s", when, strings.Join(mountpoints(left), ", "))
	}
}

// listHome lists the paths under home.
func (e *env) listHome() map[string]bool {
	e.t.Helper()
	paths := make(map[string]bool)
	err := filepath.WalkDir(e.home, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		paths[p] = true
		return nil
	})
	if err != nil {
		e.t.Fatalf("failed to list home: %v", err)
	}
	return paths
}

// assertHomeClean checks, once every layer is removed, that home holds only
// what it held when the driver was built, and empty directories at most (a
// backend may make its skeleton lazily). Nothing may be named after a
// removed layer.
func (e *env) assertHomeClean(removed ...string) {
	e.t.Helper()
	var left []string
	for p := range e.listHome() {
		if e.initial[p] {
			continue
		}
		named := false
		for _, name := range removed {
			named = named || strings.Contains(p, strings.TrimSuffix(id(name), "-init"))
		}
		entries, err := os.ReadDir(p)
		if named || err != nil || len(entries) > 0 {
			left = append(left, p)
		}
	}
	if len(left) > 0 {
		sort.Strings(left)
		e.t.Errorf("home holds what removed layers left behind:\n\t%s", strings.Join(left, "\n\t"))
	}
}

func mountsUnder(t testing.TB, dir string) []*mountinfo.Info {
	t.Helper()
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		t.Fatalf("failed to read the mount table: %v", err)
	}
	return mounts
}

// mountAt returns the mount whose mount point is dir, or nil.
func mountAt(t testing.TB, dir string) *mountinfo.Info {
	t.Helper()
	mounts, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(filepath.Clean(dir)))
	if err != nil {
		t.Fatalf("failed to read the mount table: %v", err)
	}
	if len(mounts) == 0 {
		return nil
	}
	return mounts[len(mounts)-1]
}

func mountpoints(mounts []*mountinfo.Info) []string {
	var mps []string
	for _, m := range mounts {
		mps = append(mps, m.Mountpoint)
	}
	return mps
}

// unmountAll unmounts everything under dir, deepest first, so that a failed
// case leaks nothing into the next one or into the removal of its temporary
// directories.
func unmountAll(t testing.TB, dir string) {
	t.Helper()
	mounts := mountsUnder(t, dir)
	sort.Slice(mounts, func(i, j int) bool {
		return len(mounts[i].Mountpoint) > len(mounts[j].Mountpoint)
	})
	for _, m := range mounts {
		if err := unix.Unmount(m.Mountpoint, 0); err != nil {
			if err := unix.Unmount(m.Mountpoint, unix.MNT_DETACH); err != nil {
				t.Errorf("failed to unmount %s: %v", m.Mountpoint, err)
			}
		}
	}
}

func tarOf(t testing.TB, entries ...Entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteTar(&buf, entries...); err != nil {
		t.Fatalf("failed to write a fixture tar: %v", err)
	}
	return buf.Bytes()
}

// tarEntry is one entry of a tar the driver produced.
type tarEntry struct {
	hdr     *tar.Header
	content []byte
}

// readTar reads a whole tar, keyed by cleaned entry name. The root entry,
// which some writers include, is left out.
func readTar(t testing.TB, r io.Reader) map[string]tarEntry {
	t.Helper()
	entries := make(map[string]tarEntry)
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return entries
		}
		if err != nil {
			t.Fatalf("failed to read the tar: %v", err)
		}
		content, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("failed to read %s from the tar: %v", hdr.Name, err)
		}
		name := path.Clean(strings.TrimPrefix(hdr.Name, "/"))
		if name == "." {
			continue
		}
		if _, dup := entries[name]; dup {
			t.Errorf("the tar holds %s twice", name)
		}
		entries[name] = tarEntry{hdr: hdr, content: content}
	}
}

// diffTar calls Diff and reads the whole tar it returns, raw and by name.
func (e *env) diffTar(name, parent string) ([]byte, map[string]tarEntry) {
	e.t.Helper()
	rc, err := e.d.Diff(id(name), id(parent))
	if err != nil {
		e.t.Fatalf("Diff(%s, parent %q) failed: %v", name, parent, err)
	}
	raw, err := io.ReadAll(rc)
	if err != nil {
		e.t.Fatalf("failed to read Diff(%s, parent %q): %v", name, parent, err)
	}
	if err := rc.Close(); err != nil {
		e.t.Fatalf("failed to close Diff(%s, parent %q): %v", name, parent, err)
	}
	return raw, readTar(e.t, bytes.NewReader(raw))
}

// checkChanges compares a change list with the expected one, order aside,
// and reports every missing, unexpected and repeated entry.
func checkChanges(t testing.TB, what string, got []graphdriver.Change, want ...graphdriver.Change) {
	t.Helper()
	wantCount, gotCount := make(map[string]int), make(map[string]int)
	for _, c := range want {
		wantCount[formatChange(c)]++
	}
	for _, c := range got {
		gotCount[formatChange(c)]++
	}

	var diffs []string
	for c, n := range gotCount {
		switch {
		case wantCount[c] == 0:
			diffs = append(diffs, "unexpected: "+c)
		case n > wantCount[c]:
			diffs = append(diffs, "repeated:   "+c)
		}
	}
	for c := range wantCount {
		if gotCount[c] == 0 {
			diffs = append(diffs, "missing:    "+c)
		}
	}
	if len(diffs) > 0 {
		sort.Strings(diffs)
		t.Errorf("%s differ from what Docker reports:\n\t%s", what, strings.Join(diffs, "\n\t"))
	}
}

// formatChange writes a change as `docker diff` does: "C /etc".
func formatChange(c graphdriver.Change) string {
	switch c.Kind {
	case graphdriver.ChangeModify:
		return "C " + c.Path
	case graphdriver.ChangeAdd:
		return "A " + c.Path
	case graphdriver.ChangeDelete:
		return "D " + c.Path
	}
	return fmt.Sprintf("kind %d %s", c.Kind, c.Path)
}

// add, modify and del declare expected changes.
func add(p string) graphdriver.Change {
	return graphdriver.Change{Path: p, Kind: graphdriver.ChangeAdd}
}

func modify(p string) graphdriver.Change {
	return graphdriver.Change{Path: p, Kind: graphdriver.ChangeModify}
}

func del(p string) graphdriver.Change {
	return graphdriver.Change{Path: p, Kind: graphdriver.ChangeDelete}
}

// writeFile, removeAll and mkdir change a mounted tree as a container's
// processes would. New files get mode 0644 and directories 0755, whatever
// the umask.
func writeFile(t testing.TB, dir, rel, content string) {
	t.Helper()
	p := filepath.Join(dir, rel)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
}

func removeAll(t testing.TB, dir, rel string) {
	t.Helper()
	if err := os.RemoveAll(filepath.Join(dir, rel)); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t testing.TB, dir, rel string) {
	t.Helper()
	p := filepath.Join(dir, rel)
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o755); err != nil {
		t.Fatal(err)
	}
}
