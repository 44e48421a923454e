package aufs

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/graphdriver"
	gt "github.com/cvmfs-contrib/cvmfs-graphdriver/graphdriver/graphtest"
)

func TestSupported(t *testing.T) {
	dir := t.TempDir()
	without := filepath.Join(dir, "without")
	writeFile(t, without, "nodev\ttmpfs\n\text4\nnodev\toverlay\n", 0o644)
	with := filepath.Join(dir, "with")
	writeFile(t, with, "nodev\ttmpfs\nnodev\taufs\n", 0o644)
	loading := filepath.Join(dir, "loading")
	writeFile(t, loading, "nodev\ttmpfs\n", 0o644)

	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		writeFile(t, p, "#!/bin/sh\n"+body+"\n", 0o755)
		return p
	}
	loads := script("modprobe-loads", "printf 'nodev\\taufs\\n' >>"+loading)
	fails := script("modprobe-fails", "echo 'modprobe: FATAL: Module aufs not found in directory /lib/modules/6.18.0' >&2\nexit 1")
	silent := script("modprobe-silent", "exit 0")

	const prefix = "the kernel does not support aufs (not in /proc/filesystems and modprobe aufs failed: "
	const suffix = "); use the overlay2 backend"
	for _, c := range []struct {
		name, filesystems, modprobe, detail string
	}{
		{"listed", with, "no-such-modprobe", ""},
		{"loaded-by-modprobe", loading, loads, ""},
		{"no-modprobe", without, "cvmfs-graphdriver-no-modprobe",
			`exec: "cvmfs-graphdriver-no-modprobe": executable file not found in $PATH`},
		{"modprobe-fails", without, fails, "modprobe: FATAL: Module aufs not found in directory /lib/modules/6.18.0"},
		{"modprobe-loads-nothing", without, silent, "it succeeded, yet aufs is still not listed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := supported(c.filesystems, c.modprobe)
			if c.detail == "" {
				if err != nil {
					t.Fatalf("supported: %v, want nil", err)
				}
				return
			}
			if want := prefix + c.detail + suffix; err == nil || err.Error() != want {
				t.Fatalf("supported: %v\nwant %s", err, want)
			}
			if !errors.Is(err, ErrNotSupported) {
				t.Errorf("the error does not match ErrNotSupported")
			}
		})
	}
}

// TestNewWithoutAufs selects the backend on this kernel: without aufs, New
// fails with one sentence and leaves no home behind.
func TestNewWithoutAufs(t *testing.T) {
	if listsFilesystem(procFilesystems, "aufs") || useKernel() {
		t.Skip("the kernel has aufs")
	}
	home := filepath.Join(t.TempDir(), "aufs")
	d, err := New(graphdriver.InitOptions{Home: home}, "")
	if err == nil {
		d.Cleanup()
		t.Fatal("New succeeded on a kernel without aufs")
	}
	msg := err.Error()
	if !errors.Is(err, ErrNotSupported) ||
		!strings.HasPrefix(msg, "the kernel does not support aufs (not in /proc/filesystems and modprobe aufs failed: ") ||
		!strings.HasSuffix(msg, "); use the overlay2 backend") || strings.Contains(msg, "\n") {
		t.Errorf("New failed with %q, want one sentence saying the kernel lacks aufs", msg)
	}
	if _, err := os.Stat(home); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("New made %s on a kernel without aufs", home)
	}
}

func TestReadMaxBranches(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name, config string
		want         int
	}{
		{"default", "CONFIG_AUFS_FS=m\nCONFIG_AUFS_BRANCH_MAX_127=y\nCONFIG_AUFS_SBILIST=y\n", 127},
		{"1023", "CONFIG_AUFS_FS=m\nCONFIG_AUFS_BRANCH_MAX_1023=y\nCONFIG_AUFS_XATTR=y\n", 1023},
		{"32767", "CONFIG_AUFS_BRANCH_MAX_32767=y\n", 32767},
		{"not-chosen", "# CONFIG_AUFS_BRANCH_MAX_511 is not set\n", defaultMaxBranches},
		{"missing", "", defaultMaxBranches},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, c.name)
			if c.config != "" {
				writeFile(t, path, c.config, 0o444)
			}
			if got := readMaxBranches(path); got != c.want {
				t.Errorf("readMaxBranches = %d, want %d", got, c.want)
			}
		})
	}
}

func TestMountCalls(t *testing.T) {
	// A page of 100 bytes holds the writable branch, two more and the
	// options, then three appends, then one.
	d := &Driver{home: "/h", kernel: kernel{pageSize: 100, xino: "/dev/shm/aufs.xino", dirperm1: true}}
	rw := branch{dir: "/h/diff/top", rel: "diff/top"}
	var ro []branch
	for _, n := range []string{"a", "b", "c", "d", "e", "f"} {
		ro = append(ro, branch{dir: "/h/diff/layer-" + n, rel: "diff/layer-" + n})
	}

	calls, relative, err := d.mountCalls("top", rw, ro, "")
	if err != nil || relative {
		t.Fatalf("mountCalls: relative %v, %v", relative, err)
	}
	want := []mountCall{
		{0, "br:/h/diff/top=rw:/h/diff/layer-a=ro+wh:/h/diff/layer-b=ro+wh,dio,xino=/dev/shm/aufs.xino,dirperm1"},
		{unix.MS_REMOUNT, "append:/h/diff/layer-c=ro+wh,append:/h/diff/layer-d=ro+wh,append:/h/diff/layer-e=ro+wh"},
		{unix.MS_REMOUNT, "append:/h/diff/layer-f=ro+wh"},
	}
	if !slices.Equal(calls, want) {
		t.Errorf("mountCalls:\n\t%v\nwant\n\t%v", calls, want)
	}

	d.kernel.pageSize = 160
	calls, _, err = d.mountCalls("top", rw, ro[:3], "system_u:object_r:container_file_t:s0:c1,c2")
	if err != nil {
		t.Fatal(err)
	}
	if want := `,context="system_u:object_r:container_file_t:s0:c1,c2"`; len(calls) != 2 || !strings.HasSuffix(calls[0].data, want) || !strings.HasSuffix(calls[1].data, want) {
		t.Errorf("mountCalls with a label: %v, want every call to end with %s", calls, want)
	}

	long := branch{dir: "/" + strings.Repeat("x", 200)}
	if _, _, err := d.mountCalls("top", rw, []branch{long}, ""); err == nil || !strings.Contains(err.Error(), long.dir) {
		t.Errorf("mountCalls with a branch longer than a page: %v, want an error naming it", err)
	}
}

// TestUnion checks the AUFS rules the backend reads branches with.
func TestUnion(t *testing.T) {
	requireRoot(t)
	top, mid, bottom := t.TempDir(), t.TempDir(), t.TempDir()
	apply(t, bottom,
		gt.File("a/keep", "", 0o644),
		gt.File("a/gone", "", 0o644),
		gt.File("b/old", "", 0o644),
		gt.File("c/old", "", 0o644),
		gt.File("d/x", "", 0o644),
		gt.File("e", "", 0o644),
		gt.File("f/old", "", 0o644),
	)
	apply(t, mid,
		gt.Whiteout("a/gone"),
		gt.Dir("b", 0o755),
		gt.Opaque("b"),
		gt.File("b/new", "", 0o644),
		gt.File("d", "file now", 0o644),
		gt.Whiteout("f"),
		gt.File("f/new", "", 0o644),
	)
	apply(t, top,
		gt.File("a/top", "", 0o644),
		gt.Whiteout("c"),
		gt.File("e/child", "", 0o644),
	)
	u := union{top, mid, bottom}

	for _, c := range []struct {
		dir  string
		want []string
	}{
		{".", []string{"a", "b", "d", "e", "f"}},
		{"a", []string{"keep", "top"}},
		{"b", []string{"new"}},
		{"e", []string{"child"}},
		{"f", []string{"new"}},
	} {
		got, err := u.names(c.dir)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("names(%s) = %q, %v; want %q", c.dir, got, err, c.want)
		}
	}
	for _, c := range []struct {
		path string
		want bool
	}{
		{"a/keep", true}, {"a/gone", false}, {"a/top", true},
		{"b/old", false}, {"b/new", true},
		{"c", false}, {"c/old", false},
		{"d", true}, {"d/x", false},
		{"e/child", true},
		{"f/old", false}, {"f/new", true},
		{"a/.wh.gone", true}, // a marker is an entry of its branch; only its name is special
	} {
		_, ok, err := u.lookup(c.path)
		if err != nil || ok != c.want {
			t.Errorf("lookup(%s) = %v, %v; want %v", c.path, ok, err, c.want)
		}
	}
}

// TestChanges checks the change list of a writable branch against the
// branches below it.
func TestChanges(t *testing.T) {
	requireRoot(t)
	upper, lower := t.TempDir(), t.TempDir()
	apply(t, lower,
		gt.File("etc/hostname", "old", 0o644),
		gt.File("etc/gone", "", 0o644),
		gt.File("opt/app/a", "", 0o644),
		gt.File("opt/app/gone", "", 0o644),
		gt.File("opt/app/sub/b", "", 0o644),
		gt.File("opt/app/sub/c", "", 0o644),
		gt.File("srv/same", "", 0o644),
	)
	apply(t, upper,
		gt.File("etc/hostname", "new one", 0o644),
		gt.Whiteout("etc/gone"),
		gt.Dir("opt/app", 0o755),
		gt.Opaque("opt/app"),
		gt.File("opt/app/a", "again", 0o644),
		gt.File("opt/app/sub/b", "", 0o644),
		gt.File("new/file", "", 0o644),
	)
	for _, meta := range aufsMeta {
		if err := os.Mkdir(filepath.Join(upper, meta), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	got, err := aufsChanges(upper, union{lower})
	if err != nil {
		t.Fatal(err)
	}
	want := []graphdriver.Change{
		{Path: "/etc", Kind: graphdriver.ChangeModify},
		{Path: "/etc/gone", Kind: graphdriver.ChangeDelete},
		{Path: "/etc/hostname", Kind: graphdriver.ChangeModify},
		{Path: "/new", Kind: graphdriver.ChangeAdd},
		{Path: "/new/file", Kind: graphdriver.ChangeAdd},
		{Path: "/opt", Kind: graphdriver.ChangeModify},
		{Path: "/opt/app", Kind: graphdriver.ChangeModify},
		{Path: "/opt/app/a", Kind: graphdriver.ChangeModify},
		{Path: "/opt/app/gone", Kind: graphdriver.ChangeDelete},
		{Path: "/opt/app/sub", Kind: graphdriver.ChangeModify},
		{Path: "/opt/app/sub/b", Kind: graphdriver.ChangeModify},
		{Path: "/opt/app/sub/c", Kind: graphdriver.ChangeDelete},
	}
	if !slices.Equal(got, want) {
		t.Errorf("aufsChanges:\n\t%v\nwant\n\t%v", got, want)
	}
}

// TestThinUnhonourableOverlayLayer refuses a repository layer with an
// overlay feature aufs has no equivalent for, naming the layer and its URL:
// when the thin layer is applied if the repository is there, else when a
// layer above it is mounted.
func TestThinUnhonourableOverlayLayer(t *testing.T) {
	cvmfs := t.TempDir()
	d, _ := newTestDriver(t, t.TempDir(), cvmfs, defaultMaxBranches)
	base := publish(t, cvmfs, gt.File("etc/hostname", "base\n", 0o644))
	renamed := []gt.Entry{
		gt.Dir("opt/moved", 0o755),
		gt.Xattr("opt/moved", overlayRedirect, "/opt/old"),
	}
	bad := publish(t, cvmfs, renamed...)
	desc := thinJSON(t, base, bad)
	checkErr := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s succeeded with a redirected overlay directory in the repository", what)
		}
		for _, s := range []string{"layer 2 of the thin image", bad.url, "trusted.overlay.redirect", "/opt/moved", "overlay2 backend"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s failed with %q, which does not say %q", what, err, s)
			}
		}
	}

	if err := d.Create("thin", "", graphdriver.CreateOpts{}); err != nil {
		t.Fatal(err)
	}
	_, err := d.ApplyDiff("thin", "", tarReader(t, gt.File("thin.json", desc, 0o644)))
	checkErr("ApplyDiff", err)
	if d.isThin("thin") {
		t.Error("the refused thin layer was recorded as thin")
	}

	if err := os.RemoveAll(bad.dir); err != nil {
		t.Fatal(err)
	}
	if err := d.Create("thin2", "", graphdriver.CreateOpts{}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ApplyDiff("thin2", "", tarReader(t, gt.File("thin.json", desc, 0o644))); err != nil {
		t.Fatalf("ApplyDiff with the repository layer missing: %v", err)
	}
	createRW(t, d, "ctr", "thin2")
	if err := os.MkdirAll(bad.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	apply(t, bad.dir, renamed...)
	_, err = d.Get("ctr", "")
	checkErr("Get", err)
	d.Put("ctr")
}

// TestCreateClearsLeftovers makes a layer whose directories an interrupted
// Create left behind, and starts a driver on a home with temporaries.
func TestCreateClearsLeftovers(t *testing.T) {
	home := t.TempDir()
	d, _ := newTestDriver(t, home, t.TempDir(), defaultMaxBranches)
	if err := os.MkdirAll(filepath.Join(d.diffDir("half"), "stale"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(home, diffDirName, tempPrefix+"x-1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if d.Exists("half") {
		t.Fatal("a layer without parent list exists")
	}
	makeLayer(t, d, "half", "", gt.File("f", "x", 0o644))
	gt.CheckTree(t, d.diffDir("half"), gt.File("f", "x", 0o644))

	newTestDriver(t, home, t.TempDir(), defaultMaxBranches)
	if _, err := os.Stat(filepath.Join(home, diffDirName, tempPrefix+"x-1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a restarted driver left a temporary directory: %v", err)
	}
}

// TestMetadataAndStatus checks the facts `docker inspect` and `docker info`
// show.
func TestMetadataAndStatus(t *testing.T) {
	cvmfs := t.TempDir()
	d, _ := newTestDriver(t, t.TempDir(), cvmfs, defaultMaxBranches)
	repo := publish(t, cvmfs, gt.File("f", "x", 0o644))
	makeLayer(t, d, "thin", "", gt.File("thin.json", thinJSON(t, repo), 0o644))
	makeLayer(t, d, "base", "", gt.File("f", "x", 0o644))
	createRW(t, d, "ctr", "base")

	meta, err := d.GetMetadata("ctr")
	if err != nil {
		t.Fatal(err)
	}
	if meta["DiffDir"] != d.diffDir("ctr") || meta["MountDir"] != d.mntDir("ctr") || meta["BranchDirs"] != d.diffDir("base") {
		t.Errorf("GetMetadata(ctr) = %v", meta)
	}
	if meta, err := d.GetMetadata("thin"); err != nil || meta["ThinLayers"] != repo.dir {
		t.Errorf("GetMetadata(thin) = %v, %v; want ThinLayers %s", meta, err, repo.dir)
	}
	for key, want := range map[string]string{
		"Backend":            "aufs",
		"Backing Filesystem": d.kernel.backingFS,
		"Dirs":               "3",
		"CernVM-FS Root":     cvmfs,
		"Thin Layers":        "1",
	} {
		if got := status(d, key); got != want {
			t.Errorf("Status %s = %q, want %q", key, got, want)
		}
	}
}

func apply(t *testing.T, dir string, entries ...gt.Entry) {
	t.Helper()
	if err := gt.Apply(dir, entries...); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}
