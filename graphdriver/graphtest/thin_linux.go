package graphtest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/graphdriver"
)

// thinRepo is the repository the thin cases publish their layers in.
const thinRepo = "repo.example.org"

// repoFormat is how a repository layer marks deleted entries and opaque
// directories (thin-image.md, rule 7).
type repoFormat int

const (
	// overlayFormat uses 0/0 character devices and trusted.overlay.opaque,
	// as a transaction-based publish with extended attributes keeps them.
	overlayFormat repoFormat = iota
	// aufsFormat uses .wh. marker files, as `cvmfs_server ingest` leaves them.
	aufsFormat
)

// thinRepoLayers is a three-layer image as the repository holds it, base
// first. The middle layer deletes a file of the base and makes a directory
// opaque; etc/hostname is replaced by every layer, so the merged tree shows
// whether the layers are stacked in the descriptor's order.
func thinRepoLayers(f repoFormat) [][]Entry {
	deleted := func(p string) Entry {
		if f == overlayFormat {
			return CharDevice(p, 0, 0)
		}
		return Whiteout(p)
	}
	opaque := func(dir string) Entry {
		if f == overlayFormat {
			return Xattr(dir, "trusted.overlay.opaque", "y")
		}
		return Opaque(dir)
	}
	return [][]Entry{
		{
			File("bin/busybox", "busybox binary\n", 0o755),
			Symlink("bin/sh", "busybox"),
			File("etc/hostname", "thin-base\n", 0o644),
			File("etc/os-release", "ID=thin\n", 0o644),
			File("etc/remove-me", "stale\n", 0o644),
			File("usr/share/doc/pkg/README", "readme\n", 0o644),
			File("usr/share/doc/pkg/COPYING", "license\n", 0o644),
		},
		{
			deleted("etc/remove-me"),
			File("etc/hostname", "thin-middle\n", 0o644),
			File("etc/os-release", "ID=thin\nVERSION=2\n", 0o644),
			Dir("usr/share/doc/pkg", 0o755),
			opaque("usr/share/doc/pkg"),
			File("usr/share/doc/pkg/NEWS", "news\n", 0o644),
		},
		{
			File("app/run.sh", "#!/bin/sh\nexec /bin/sh\n", 0o755),
			Symlink("app/sh", "../bin/sh"),
			File("etc/hostname", "thin-top\n", 0o644),
			File("etc/l3", "third layer\n", 0o644),
		},
	}
}

// thinImageView is what a container sees of thinRepoLayers: no thin.json,
// no deleted or hidden entry, no marker.
func thinImageView() []Entry {
	return []Entry{
		File("app/run.sh", "#!/bin/sh\nexec /bin/sh\n", 0o755),
		Symlink("app/sh", "../bin/sh"),
		File("bin/busybox", "busybox binary\n", 0o755),
		Symlink("bin/sh", "busybox"),
		File("etc/hostname", "thin-top\n", 0o644),
		File("etc/l3", "third layer\n", 0o644),
		File("etc/os-release", "ID=thin\nVERSION=2\n", 0o644),
		File("usr/share/doc/pkg/NEWS", "news\n", 0o644),
	}
}

// repoLayer is a layer published in the repository.
type repoLayer struct {
	digest string
	url    string
	dir    string
}

// publish writes layers into the repository under layers/<digest>, the
// digest being that of the layer's tar, as new tools write it.
func (e *env) publish(layers [][]Entry) []repoLayer {
	e.t.Helper()
	published := make([]repoLayer, 0, len(layers))
	for _, layer := range layers {
		sum := sha256.Sum256(tarOf(e.t, layer...))
		digest := hex.EncodeToString(sum[:])
		l := repoLayer{
			digest: digest,
			url:    "cvmfs://" + thinRepo + "/layers/" + digest,
			dir:    filepath.Join(e.cvmfsRoot, thinRepo, "layers", digest),
		}
		if err := os.MkdirAll(l.dir, 0o755); err != nil {
			e.t.Fatal(err)
		}
		if err := Apply(l.dir, layer...); err != nil {
			e.t.Fatalf("failed to publish a layer: %v", err)
		}
		published = append(published, l)
	}
	return published
}

// descriptor is a thin.json listing layers base first, as a map so that
// cases can bend it.
func descriptor(layers []repoLayer) map[string]any {
	list := make([]map[string]any, 0, len(layers))
	for _, l := range layers {
		list = append(list, map[string]any{"digest": l.digest, "url": l.url})
	}
	return map[string]any{
		"version":     "1.0",
		"min_version": "",
		"origin":      "library/graphtest:latest@https://registry.example.org/v2",
		"layers":      list,
		"comment":     "",
	}
}

func thinJSON(t testing.TB, desc map[string]any) string {
	t.Helper()
	b, err := json.Marshal(desc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func thinCases() []testCase {
	return []testCase{
		{name: "overlay-whiteouts", run: func(e *env) { testThinContainer(e, overlayFormat) }},
		{name: "aufs-whiteouts", run: func(e *env) { testThinContainer(e, aufsFormat) }},
		{name: "export", run: testThinExport},
		{name: "missing-layer-directory", run: testThinMissingLayerDir},
		{name: "bad-url", table: testThinBadURL},
		{name: "malformed-descriptor", table: testThinMalformed},
		{name: "descriptor-variants", table: testThinVariants},
	}
}

// testThinContainer runs a container on a thin image as dockerd does: an
// init layer and the container's layer above the thin layer. Both must show
// the repository layers merged, and report only their own changes. At the
// end every layer is removed, and the repository is as it was.
func testThinContainer(e *env, f repoFormat) {
	layers := thinRepoLayers(f)
	repo := e.publish(layers)
	e.layer("thin", "", File("thin.json", thinJSON(e.t, descriptor(repo)), 0o644))

	e.createRW("ctr-init", "thin")
	dir := e.get("ctr-init")
	CheckTree(e.t, dir, thinImageView()...)
	writeFile(e.t, dir, ".dockerenv", "")
	writeFile(e.t, dir, "etc/hosts", "127.0.0.1 localhost\n")
	e.put("ctr-init")

	e.createRW("ctr", "ctr-init")
	dir = e.get("ctr")
	initFiles := []Entry{File(".dockerenv", "", 0o644), File("etc/hosts", "127.0.0.1 localhost\n", 0o644)}
	CheckTree(e.t, dir, append(thinImageView(), initFiles...)...)

	writeFile(e.t, dir, "newfile", "container data\n")
	writeFile(e.t, dir, "etc/hostname", "container host\n")
	removeAll(e.t, dir, "etc/l3")
	removeAll(e.t, dir, "usr/share/doc")
	CheckTree(e.t, dir,
		File(".dockerenv", "", 0o644),
		File("app/run.sh", "#!/bin/sh\nexec /bin/sh\n", 0o755),
		Symlink("app/sh", "../bin/sh"),
		File("bin/busybox", "busybox binary\n", 0o755),
		Symlink("bin/sh", "busybox"),
		File("etc/hostname", "container host\n", 0o644),
		File("etc/hosts", "127.0.0.1 localhost\n", 0o644),
		File("etc/os-release", "ID=thin\nVERSION=2\n", 0o644),
		File("newfile", "container data\n", 0o644),
		Dir("usr/share", 0o755),
	)
	e.put("ctr")

	changes, err := e.d.Changes(id("ctr-init"), id("thin"))
	if err != nil {
		e.t.Fatalf("Changes of the init layer failed: %v", err)
	}
	checkChanges(e.t, "Changes of the init layer", changes,
		add("/.dockerenv"), modify("/etc"), add("/etc/hosts"))

	changes, err = e.d.Changes(id("ctr"), id("ctr-init"))
	if err != nil {
		e.t.Fatalf("Changes of the container failed: %v", err)
	}
	checkChanges(e.t, "Changes of the container", changes,
		add("/newfile"), modify("/etc"), modify("/etc/hostname"), del("/etc/l3"),
		modify("/usr"), modify("/usr/share"), del("/usr/share/doc"))

	size, err := e.d.DiffSize(id("ctr"), id("ctr-init"))
	if err != nil {
		e.t.Fatalf("DiffSize of the container failed: %v", err)
	}
	if want := int64(len("container data\n") + len("container host\n")); size != want {
		e.t.Errorf("DiffSize of the container is %d, want %d", size, want)
	}

	_, entries := e.diffTar("ctr", "ctr-init")
	checkTarNames(e.t, "Diff of the container", entries,
		[]string{"etc/.wh.l3", "etc/hostname", "newfile", "usr/share/.wh.doc"},
		[]string{"etc", "usr", "usr/share"})

	for i, l := range repo {
		if !CheckTree(e.t, l.dir, layers[i]...) {
			e.t.Errorf("the driver changed repository layer %d", i)
		}
	}

	e.remove("ctr", "ctr-init", "thin")
	e.assertNoMounts("after removing every layer")
	e.assertHomeClean("ctr", "ctr-init", "thin")
}

// checkTarNames checks that a tar holds exactly the files want names, and
// no directory but those allowed.
func checkTarNames(t testing.TB, what string, entries map[string]tarEntry, want, allowedDirs []string) {
	t.Helper()
	var files, dirs []string
	for name, te := range entries {
		if te.hdr.FileInfo().IsDir() {
			dirs = append(dirs, name)
		} else {
			files = append(files, name)
		}
	}
	sort.Strings(files)
	if strings.Join(files, " ") != strings.Join(want, " ") {
		t.Errorf("%s holds %q, want %q", what, files, want)
	}
	for _, d := range dirs {
		allowed := false
		for _, a := range allowedDirs {
			allowed = allowed || a == d
		}
		if !allowed {
			t.Errorf("%s holds directory %s, which holds none of its changes", what, d)
		}
	}
}

// testThinExport expects Diff of a thin layer to be thin.json alone, with
// the bytes that were applied, so that a thin image stays thin on push; a
// container runs above it, as when an image is saved while in use.
func testThinExport(e *env) {
	repo := e.publish(thinRepoLayers(overlayFormat))
	desc := thinJSON(e.t, descriptor(repo))
	e.layer("thin", "", File("thin.json", desc, 0o644))
	e.createRW("ctr", "thin")

	_, entries := e.diffTar("thin", "")
	checkTarNames(e.t, "Diff of the thin layer", entries, []string{"thin.json"}, nil)
	if te, ok := entries["thin.json"]; ok && string(te.content) != desc {
		e.t.Errorf("Diff of the thin layer holds thin.json %q, want %q", te.content, desc)
	}
}

// step is one call of the sequence that brings up a container on a thin
// image; a broken image must fail one of them.
type step struct {
	name string
	run  func() error
}

// thinSteps apply desc as a thin layer, create a layer above it and mount
// that one, storing the directory in dir.
func thinSteps(e *env, desc string, dir *string) []step {
	return []step{
		{"ApplyDiff of the thin layer", func() error {
			thin := bytes.NewReader(tarOf(e.t, File("thin.json", desc, 0o644)))
			_, err := e.d.ApplyDiff(id("thin"), "", thin)
			return err
		}},
		{"CreateReadWrite above the thin layer", func() error {
			return e.d.CreateReadWrite(id("ctr-init"), id("thin"), graphdriver.CreateOpts{})
		}},
		{"Get of the layer above the thin layer", func() error {
			var err error
			*dir, err = e.d.Get(id("ctr-init"), "")
			return err
		}},
	}
}

// runSteps runs steps until one fails, and returns its index and error.
func runSteps(steps []step) (int, error) {
	for i, s := range steps {
		if err := s.run(); err != nil {
			return i, err
		}
	}
	return len(steps), nil
}

// testThinMissingLayerDir lists a layer whose directory is not in the
// repository. Bringing up a container must fail with an error that names
// the URL and the path (rule 4), leave nothing mounted or half made, and
// succeed once the directory appears, as when autofs mounts a repository
// late.
func testThinMissingLayerDir(e *env) {
	layers := thinRepoLayers(overlayFormat)
	repo := e.publish(layers)
	missing := repo[1]
	if err := os.RemoveAll(missing.dir); err != nil {
		e.t.Fatal(err)
	}
	e.create("thin", "")

	var dir string
	steps := thinSteps(e, thinJSON(e.t, descriptor(repo)), &dir)
	failed, err := runSteps(steps)
	if err == nil {
		e.put("ctr-init")
		e.t.Fatalf("a layer above a thin image was mounted though layer directory %s is missing", missing.dir)
	}
	for _, s := range []string{missing.url, missing.dir} {
		if !strings.Contains(err.Error(), s) {
			e.t.Errorf("%s failed with an error that does not name %s: %v", steps[failed].name, s, err)
		}
	}
	if steps[failed].name == "CreateReadWrite above the thin layer" && e.d.Exists(id("ctr-init")) {
		e.t.Error("the failed CreateReadWrite left its layer behind")
	}
	e.assertNoMounts("after " + steps[failed].name + " failed")

	if err := os.MkdirAll(missing.dir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := Apply(missing.dir, layers[1]...); err != nil {
		e.t.Fatal(err)
	}
	for _, s := range steps[failed:] {
		if err := s.run(); err != nil {
			e.t.Fatalf("%s failed once the layer directory exists: %v", s.name, err)
		}
	}
	CheckTree(e.t, dir, thinImageView()...)
	e.put("ctr-init")
}

// testThinBadURL lists layer URLs that rule 3 refuses. Bringing up a
// container must fail with an error that points at the culprit: the URL
// itself, or the url field when the descriptor is refused as it is applied
// (rule 5), and a refused scheme by name (rule 3). Every directory a
// careless resolver could reach from them exists, so that such a driver
// mounts it instead of failing for a missing directory: the lexical escapes
// beside and inside the CernVM-FS root, the same path cleaned into the
// repository, the repository itself, and the path under another scheme.
func testThinBadURL(t *testing.T, fresh func(t *testing.T) *env) {
	urls := []struct{ name, url, names string }{
		{"other-scheme", "http://" + thinRepo + "/layers/x", "http"},
		{"path-escapes-repository", "cvmfs://" + thinRepo + "/../../etc", ""},
		{"repository-escapes-root", "cvmfs://../etc", ""},
		{"no-path", "cvmfs://" + thinRepo, ""},
		{"root-path", "cvmfs://" + thinRepo + "/", ""},
	}
	for _, u := range urls {
		t.Run(u.name, func(t *testing.T) {
			e := fresh(t)
			repo := e.publish(thinRepoLayers(overlayFormat)[:1])
			decoys := []string{
				filepath.Join(e.scratch, "etc"),
				filepath.Join(e.cvmfsRoot, "etc"),
				filepath.Join(e.cvmfsRoot, thinRepo, "etc"),
				filepath.Join(e.cvmfsRoot, thinRepo, "layers", "x"),
			}
			for _, dir := range decoys {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := Apply(dir, File("passwd", "decoy\n", 0o644)); err != nil {
					t.Fatal(err)
				}
			}
			repo = append(repo, repoLayer{digest: strings.Repeat("0", 64), url: u.url})
			e.create("thin", "")

			var dir string
			steps := thinSteps(e, thinJSON(t, descriptor(repo)), &dir)
			failed, err := runSteps(steps)
			if err == nil {
				e.put("ctr-init")
				t.Fatalf("a layer above a thin image with layer URL %s was mounted", u.url)
			}
			msg := err.Error()
			if !strings.Contains(msg, u.url) && !strings.Contains(strings.ToLower(msg), "url") {
				t.Errorf("%s failed with an error that names neither the URL %s nor the url field: %v",
					steps[failed].name, u.url, err)
			}
			if !strings.Contains(msg, u.names) {
				t.Errorf("%s failed with an error that does not name %q: %v",
					steps[failed].name, u.names, err)
			}
			e.assertNoMounts("after " + steps[failed].name + " failed")
		})
	}
}

// testThinMalformed applies descriptors that rule 5 refuses: ApplyDiff must
// fail with an error naming the field, and leave the layer as it was.
func testThinMalformed(t *testing.T, fresh func(t *testing.T) *env) {
	descs := []struct {
		name, json string
		mentions   []string
	}{
		{"bad-json", `{"version": "1.0", "layers": [`, nil},
		{"missing-layers", `{"version":"1.0","min_version":"","origin":"graphtest","comment":""}`,
			[]string{"layers"}},
		{"layers-not-a-list", `{"version":"1.0","layers":"cvmfs://` + thinRepo + `/layers/x"}`,
			[]string{"layers"}},
		{"newer-min-version", `{"version":"9.0","min_version":"9.0","layers":[]}`,
			[]string{"min_version", "9.0"}},
	}
	for _, d := range descs {
		t.Run(d.name, func(t *testing.T) {
			e := fresh(t)
			e.create("thin", "")
			thin := bytes.NewReader(tarOf(t, File("thin.json", d.json, 0o644)))
			_, err := e.d.ApplyDiff(id("thin"), "", thin)
			if err == nil {
				t.Fatalf("ApplyDiff of thin.json %s succeeded", d.json)
			}
			for _, s := range d.mentions {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("ApplyDiff of thin.json %s failed with an error that does not name %q: %v",
						d.json, s, err)
				}
			}
			if !e.d.Exists(id("thin")) {
				t.Fatal("the failed ApplyDiff removed the layer")
			}
			_, entries := e.diffTar("thin", "")
			checkTarNames(t, "Diff after the failed ApplyDiff", entries, nil, nil)
		})
	}
}

// testThinVariants applies descriptors that readers must accept: the 0.1
// version of older tools, fields unknown today, digests with their
// algorithm, and a thin scratch image without layers.
func testThinVariants(t *testing.T, fresh func(t *testing.T) *env) {
	variants := []struct {
		name  string
		edit  func(desc map[string]any)
		empty bool
	}{
		{name: "version-0.1", edit: func(d map[string]any) { d["version"] = "0.1" }},
		{name: "unknown-fields", edit: func(d map[string]any) {
			d["signature"] = map[string]any{"alg": "none"}
			d["layers"].([]map[string]any)[0]["whiteouts"] = "overlay"
		}},
		{name: "digest-algorithm", edit: func(d map[string]any) {
			for _, l := range d["layers"].([]map[string]any) {
				l["digest"] = "sha256:" + l["digest"].(string)
			}
		}},
		{name: "no-layers", edit: func(d map[string]any) { d["layers"] = []any{} }, empty: true},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			e := fresh(t)
			desc := descriptor(e.publish(thinRepoLayers(overlayFormat)))
			v.edit(desc)
			e.layer("thin", "", File("thin.json", thinJSON(t, desc), 0o644))
			e.createRW("ctr", "thin")
			if v.empty {
				e.check("ctr")
			} else {
				e.check("ctr", thinImageView()...)
			}
		})
	}
}
