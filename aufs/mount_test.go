package aufs

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/graphdriver"
	gt "github.com/cvmfs-contrib/cvmfs-graphdriver/graphdriver/graphtest"
)

// These tests check the mount calls the driver makes against what aufs(5)
// requires: "br:" with the writable branch first and "=rw", every other
// branch "=ro+wh", top first; the options dio, xino and dirperm1 in the
// first call; no call longer than a page; and branches beyond the first
// call appended, in order, by remounts ("append:<dir>=ro+wh"), each call
// holding as many as fit. The calls go to the emulator, or to the kernel's
// aufs under `make test-aufs`, so the trees they mount are checked too.

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the driver mounts, and the fixtures set owners and make device nodes")
	}
}

// newTestDriver makes a driver whose mount calls are recorded, for an aufs
// that takes maxBranches branches (the kernel's own limit under
// `make test-aufs`). Whatever it leaves mounted is unmounted when the test
// ends.
func newTestDriver(t *testing.T, home, cvmfsRoot string, maxBranches int) (*Driver, *recorder) {
	t.Helper()
	requireRoot(t)
	var next mounter = newEmulator(maxBranches)
	if useKernel() {
		next = newKernelMounter()
	}
	rec := &recorder{next: next}
	d, err := newDriver(graphdriver.InitOptions{Home: home}, cvmfsRoot, rec, testKernel(maxBranches))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Cleanup(); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
	})
	return d, rec
}

// makeLayer creates a layer from declared entries, as `docker pull` does.
func makeLayer(t *testing.T, d *Driver, id, parent string, entries ...gt.Entry) {
	t.Helper()
	if err := d.Create(id, parent, graphdriver.CreateOpts{}); err != nil {
		t.Fatalf("Create %s: %v", id, err)
	}
	applyLayer(t, d, id, parent, entries...)
}

func applyLayer(t *testing.T, d *Driver, id, parent string, entries ...gt.Entry) {
	t.Helper()
	if _, err := d.ApplyDiff(id, parent, tarReader(t, entries...)); err != nil {
		t.Fatalf("ApplyDiff %s: %v", id, err)
	}
}

// tarReader returns the layer tar of the entries.
func tarReader(t *testing.T, entries ...gt.Entry) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	if err := gt.WriteTar(&buf, entries...); err != nil {
		t.Fatal(err)
	}
	return &buf
}

func createRW(t *testing.T, d *Driver, id, parent string) {
	t.Helper()
	if err := d.CreateReadWrite(id, parent, graphdriver.CreateOpts{}); err != nil {
		t.Fatalf("CreateReadWrite %s: %v", id, err)
	}
}

func get(t *testing.T, d *Driver, id string) string {
	t.Helper()
	dir, err := d.Get(id, "")
	if err != nil {
		t.Fatalf("Get %s: %v", id, err)
	}
	t.Cleanup(func() { d.Put(id) })
	return dir
}

// repoLayer is a layer directory published in the test repository.
type repoLayer struct {
	digest, url, dir string
}

const testRepo = "repo.example.org"

// publish writes a layer into the repository under cvmfsRoot.
func publish(t *testing.T, cvmfsRoot string, entries ...gt.Entry) repoLayer {
	t.Helper()
	var buf bytes.Buffer
	if err := gt.WriteTar(&buf, entries...); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	digest := hex.EncodeToString(sum[:])
	l := repoLayer{
		digest: digest,
		url:    "cvmfs://" + testRepo + "/layers/" + digest,
		dir:    filepath.Join(cvmfsRoot, testRepo, "layers", digest),
	}
	if err := os.MkdirAll(l.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := gt.Apply(l.dir, entries...); err != nil {
		t.Fatal(err)
	}
	return l
}

// thinJSON is the descriptor of a thin image made of layers, base first.
func thinJSON(t *testing.T, layers ...repoLayer) string {
	t.Helper()
	list := make([]map[string]string, 0, len(layers))
	for _, l := range layers {
		list = append(list, map[string]string{"digest": l.digest, "url": l.url})
	}
	data, err := json.Marshal(map[string]any{"version": "1.0", "origin": "test", "layers": list})
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// mountOptions is the option tail the driver's first mount call must end
// with.
func mountOptions(d *Driver) string {
	opts := ",dio"
	if d.kernel.xino != "" {
		opts += ",xino=" + d.kernel.xino
	}
	if d.kernel.dirperm1 {
		opts += ",dirperm1"
	}
	return opts
}

// checkMountCalls checks the calls that mounted target: the branches they
// name, in order, are want ("dir=perm", top first), the first call carries
// the options, the others append, none is longer than a page, and each but
// the last holds as many branches as fit. It returns the number of
// remounts.
func checkMountCalls(t *testing.T, d *Driver, calls []recordedCall, target string, want []string) int {
	t.Helper()
	var mounts []recordedCall
	for _, c := range calls {
		if !c.unmount && c.target == target {
			mounts = append(mounts, c)
		}
	}
	if len(mounts) == 0 {
		t.Fatalf("no mount call on %s", target)
	}
	limit := d.kernel.pageSize - 1
	opts := mountOptions(d)

	first := mounts[0]
	if first.source != "none" || first.fstype != "aufs" || first.flags != 0 {
		t.Errorf("first call is mount(%q, %s, %q, %#x), want mount(\"none\", target, \"aufs\", 0)",
			first.source, target, first.fstype, first.flags)
	}
	list, ok := strings.CutPrefix(first.data, "br:")
	list, ok2 := strings.CutSuffix(list, opts)
	if !ok || !ok2 {
		t.Fatalf("first call's options %q are not br:<branches>%s", first.data, opts)
	}
	got := strings.Split(list, ":")
	sizes := []int{len(first.data)}
	counts := []int{len(got)}
	for _, c := range mounts[1:] {
		if c.source != "none" || c.fstype != "aufs" || c.flags != unix.MS_REMOUNT {
			t.Errorf("call is mount(%q, %s, %q, %#x), want a remount of aufs", c.source, target, c.fstype, c.flags)
		}
		items := strings.Split(c.data, ",")
		for _, item := range items {
			b, ok := strings.CutPrefix(item, "append:")
			if !ok {
				t.Fatalf("remount option %q in %q is not append:<branch>", item, c.data)
			}
			got = append(got, b)
		}
		sizes = append(sizes, len(c.data))
		counts = append(counts, len(items))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("the calls name branches\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}

	next := 0
	for i, size := range sizes {
		if size > limit {
			t.Errorf("call %d has %d bytes of options, more than the %d that fit in a page", i, size, limit)
		}
		next += counts[i]
		if next == len(want) {
			if i != len(sizes)-1 {
				t.Errorf("call %d names the last branch, but %d calls follow", i, len(sizes)-1-i)
			}
			break
		}
		more := ",append:" + want[next]
		if i == 0 {
			more = ":" + want[next]
		}
		if size+len(more) <= limit {
			t.Errorf("call %d stops before branch %s, which fits in its page", i, want[next])
		}
	}
	return len(mounts) - 1
}

// branchList declares branches as "dir=perm": the first writable, the
// others read-only with whiteouts.
func branchList(rw string, ro ...string) []string {
	out := []string{rw + "=" + permRW}
	for _, dir := range ro {
		out = append(out, dir+"="+permROWH)
	}
	return out
}

// TestRecordedMountThinImage mounts a container on a thin image whose
// repository layers use both whiteout formats: the branches are the
// container's diff directory, the init layer's, then the repository layers,
// the last listed uppermost, with the local whiteout branch right above the
// overlay-format layer; the thin layer's own directory is not among them.
func TestRecordedMountThinImage(t *testing.T) {
	cvmfs := t.TempDir()
	d, rec := newTestDriver(t, t.TempDir(), cvmfs, defaultMaxBranches)

	base := publish(t, cvmfs,
		gt.File("bin/sh", "shell\n", 0o755),
		gt.File("etc/hostname", "base\n", 0o644),
		gt.File("etc/passwd", "root:x:0:0::/root:/bin/sh\n", 0o644),
		gt.File("usr/share/doc/README", "readme\n", 0o644),
		gt.File("usr/share/doc/COPYING", "license\n", 0o644),
		gt.File("var/old", "old\n", 0o644),
	)
	overlay := publish(t, cvmfs, // overlay whiteouts, as a transaction publish keeps them
		gt.CharDevice("var/old", 0, 0),
		gt.Dir("usr/share/doc", 0o755),
		gt.Xattr("usr/share/doc", overlayOpaque, "y"),
		gt.File("usr/share/doc/NEWS", "news\n", 0o644),
		gt.File("etc/hostname", "middle\n", 0o644),
	)
	ingested := publish(t, cvmfs, // AUFS whiteouts, as cvmfs_server ingest leaves them
		gt.Whiteout("etc/passwd"),
		gt.File("etc/hostname", "top\n", 0o644),
		gt.File("app/run", "run\n", 0o755),
	)
	makeLayer(t, d, "thin", "", gt.File("thin.json", thinJSON(t, base, overlay, ingested), 0o644))
	createRW(t, d, "ctr-init", "thin")
	createRW(t, d, "ctr", "ctr-init")
	rec.take()

	initDir := get(t, d, "ctr-init")
	whiteouts := filepath.Join(d.home, thinDirName, "thin", whiteoutsDirName, "1")
	checkMountCalls(t, d, rec.take(), d.mntDir("ctr-init"),
		branchList(d.diffDir("ctr-init"), ingested.dir, whiteouts, overlay.dir, base.dir))
	image := []gt.Entry{
		gt.File("app/run", "run\n", 0o755),
		gt.File("bin/sh", "shell\n", 0o755),
		gt.File("etc/hostname", "top\n", 0o644),
		gt.File("usr/share/doc/NEWS", "news\n", 0o644),
		gt.Dir("var", 0o755),
	}
	gt.CheckTree(t, initDir, image...)
	if err := os.WriteFile(filepath.Join(initDir, ".dockerenv"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Put("ctr-init"); err != nil {
		t.Fatal(err)
	}

	dir := get(t, d, "ctr")
	checkMountCalls(t, d, rec.take(), d.mntDir("ctr"),
		branchList(d.diffDir("ctr"), d.diffDir("ctr-init"), ingested.dir, whiteouts, overlay.dir, base.dir))
	gt.CheckTree(t, dir, append(image, gt.File(".dockerenv", "", 0o644))...)
}

// TestRecordedMountDeepImage mounts a regular image of 130 layers, and a
// container on it, which needs several remounts: with an aufs built for
// 511 branches it is mounted in page-sized steps; with the default 127 the
// layer that would need a 128th branch is refused, with an error that
// names the limit. Under `make test-aufs` the kernel's limit decides.
func TestRecordedMountDeepImage(t *testing.T) {
	const depth = 130
	limits := []int{defaultMaxBranches, 511}
	if useKernel() {
		limits = []int{detectKernel().maxBranches}
	}
	for _, limit := range limits {
		t.Run(fmt.Sprintf("max-%d-branches", limit), func(t *testing.T) {
			d, rec := newTestDriver(t, t.TempDir(), t.TempDir(), limit)

			var ids []string
			var view []gt.Entry
			for i := range depth {
				id := fmt.Sprintf("layer%03d", i)
				parent := ""
				if i > 0 {
					parent = ids[i-1]
				}
				err := d.Create(id, parent, graphdriver.CreateOpts{})
				if i+1 > limit {
					checkRefused(t, d, id, err, i+1, limit)
					return
				}
				if err != nil {
					t.Fatalf("Create %s: %v", id, err)
				}
				name := fmt.Sprintf("f%03d", i)
				applyLayer(t, d, id, parent, gt.File(name, strconv.Itoa(i), 0o644))
				ids = append(ids, id)
				view = append(view, gt.File(name, strconv.Itoa(i), 0o644))
			}
			top := ids[depth-1]
			err := d.CreateReadWrite("ctr", top, graphdriver.CreateOpts{})
			if depth+1 > limit {
				checkRefused(t, d, "ctr", err, depth+1, limit)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			rec.take()

			var lower []string
			for i := depth - 1; i >= 0; i-- {
				lower = append(lower, d.diffDir(ids[i]))
			}
			for _, c := range []struct {
				id    string
				below []string
			}{
				{top, lower[1:]},
				{"ctr", lower},
			} {
				dir := get(t, d, c.id)
				remounts := checkMountCalls(t, d, rec.take(), d.mntDir(c.id), branchList(d.diffDir(c.id), c.below...))
				t.Logf("layer %s: %d branches, mounted with 1 call and %d remounts", c.id, len(c.below)+1, remounts)
				if remounts < 2 {
					t.Errorf("layer %s was mounted with %d remounts, want at least 2 for %d branches", c.id, remounts, len(c.below)+1)
				}
				gt.CheckTree(t, dir, view...)
			}
		})
	}
}

// checkRefused checks that a layer needing more branches than aufs takes
// was refused by the driver, naming the limit, and left nothing behind.
func checkRefused(t *testing.T, d *Driver, id string, err error, branches, limit int) {
	t.Helper()
	if err == nil {
		t.Fatalf("Create %s, which needs %d branches, succeeded with a limit of %d", id, branches, limit)
	}
	for _, want := range []string{
		fmt.Sprintf("%d aufs branches", branches),
		fmt.Sprintf("at most %d", limit),
		fmt.Sprintf("%d layers below a layer", limit-1),
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Create %s failed with %q, which does not say %q", id, err, want)
		}
	}
	if d.Exists(id) {
		t.Errorf("the refused layer %s exists", id)
	}
}

// TestRecordedMountRelative mounts layers in a home whose path holds a
// colon, as dockerd makes it for a plugin named with a tag: the branches in
// home are named relative to it and the calls are made from there, while a
// repository layer keeps its absolute path.
func TestRecordedMountRelative(t *testing.T) {
	home := filepath.Join(t.TempDir(), "cvmfs/aufs-graphdriver:latest")
	cvmfs := t.TempDir()
	d, rec := newTestDriver(t, home, cvmfs, defaultMaxBranches)

	repo := publish(t, cvmfs, gt.File("etc/hostname", "repo\n", 0o644), gt.File("gone", "x", 0o644))
	deleter := publish(t, cvmfs, gt.CharDevice("gone", 0, 0))
	makeLayer(t, d, "thin", "", gt.File("thin.json", thinJSON(t, repo, deleter), 0o644))
	makeLayer(t, d, "mid", "thin", gt.File("mid", "mid\n", 0o644))
	createRW(t, d, "ctr", "mid")
	rec.take()

	dir := get(t, d, "ctr")
	calls := rec.take()
	checkMountCalls(t, d, calls, d.mntDir("ctr"), branchList(
		"diff/ctr", "diff/mid", "thin/thin/whiteouts/1", deleter.dir, repo.dir))
	for _, c := range calls {
		if !c.unmount && c.dir != home {
			t.Errorf("mount call with %q was made from %s, want %s", c.data, c.dir, home)
		}
	}
	gt.CheckTree(t, dir, gt.File("etc/hostname", "repo\n", 0o644), gt.File("mid", "mid\n", 0o644))
}

// TestMountRefusesReservedCharacters refuses a repository layer whose path
// holds a character aufs options reserve, naming it, rather than mounting
// something else.
func TestMountRefusesReservedCharacters(t *testing.T) {
	cvmfs := filepath.Join(t.TempDir(), "cvmfs:root")
	d, rec := newTestDriver(t, t.TempDir(), cvmfs, defaultMaxBranches)
	repo := publish(t, cvmfs, gt.File("etc/hostname", "repo\n", 0o644))
	makeLayer(t, d, "thin", "", gt.File("thin.json", thinJSON(t, repo), 0o644))
	createRW(t, d, "ctr", "thin")
	rec.take()

	_, err := d.Get("ctr", "")
	if err == nil {
		d.Put("ctr")
		t.Fatal("a repository layer with a colon in its path was mounted")
	}
	if !strings.Contains(err.Error(), repo.dir) || !strings.Contains(err.Error(), repo.url) {
		t.Errorf("Get failed with %q, which names neither %s nor %s", err, repo.dir, repo.url)
	}
	for _, c := range rec.take() {
		if !c.unmount {
			t.Errorf("a mount was attempted: %q", c.data)
		}
	}
}

// TestDirperm1Detection plays an aufs without dirperm1: the driver finds
// out with a test mount when it starts, mounts without the option, and
// says so in `docker info`.
func TestDirperm1Detection(t *testing.T) {
	if useKernel() {
		t.Skip("plays an older aufs with the emulator")
	}
	requireRoot(t)
	for _, refuse := range []bool{false, true} {
		t.Run(fmt.Sprintf("refused-%v", refuse), func(t *testing.T) {
			home := t.TempDir()
			e := newEmulator(defaultMaxBranches)
			e.refuse["dirperm1"] = refuse
			rec := &recorder{next: e}
			d, err := newDriver(graphdriver.InitOptions{Home: home}, t.TempDir(), rec, testKernel(defaultMaxBranches))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { d.Cleanup() })

			var probes []string
			for _, c := range rec.take() {
				if !c.unmount {
					probes = append(probes, c.data)
					if !strings.HasPrefix(c.dir, filepath.Join(home, tempPrefix+"dirperm1-")) {
						t.Errorf("test mount made from %s, want from a temporary directory in home", c.dir)
					}
				}
			}
			xino := ""
			if d.kernel.xino != "" {
				xino = ",xino=" + d.kernel.xino
			}
			want := []string{"br:base=rw,dirperm1" + xino}
			if refuse {
				want = append(want, "br:base=rw"+xino)
			}
			if !slices.Equal(probes, want) {
				t.Errorf("test mounts %q, want %q", probes, want)
			}
			if d.kernel.dirperm1 == refuse {
				t.Errorf("dirperm1 detected as %v with an aufs that refuses it: %v", d.kernel.dirperm1, refuse)
			}
			if got := status(d, "Dirperm1 Supported"); got != strconv.FormatBool(!refuse) {
				t.Errorf("Dirperm1 Supported is %q, want %v", got, !refuse)
			}
			if left, _ := filepath.Glob(filepath.Join(home, tempPrefix+"*")); len(left) > 0 {
				t.Errorf("the test mount left %q", left)
			}

			makeLayer(t, d, "base", "", gt.File("f", "x", 0o644))
			createRW(t, d, "ctr", "base")
			get(t, d, "ctr")
			for _, c := range rec.take() {
				if !c.unmount && strings.Contains(c.data, "dirperm1") == refuse {
					t.Errorf("mounted with %q, want dirperm1 only when aufs takes it", c.data)
				}
			}
		})
	}
}

func status(d *Driver, key string) string {
	for _, kv := range d.Status() {
		if kv[0] == key {
			return kv[1]
		}
	}
	return ""
}
