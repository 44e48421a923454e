package graphtest

import (
	"bytes"
	"os"
	"path/filepath"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/graphdriver"
)

func changesCases() []testCase {
	return []testCase{
		{name: "container", run: testContainerChanges},
		{name: "commit", run: testCommitRoundTrip},
	}
}

// imageLayer is the image a container runs in the changes cases.
func imageLayer() []Entry {
	return []Entry{
		File("etc/hostname", "base\n", 0o644),
		File("etc/passwd", "root:x:0:0::/root:/bin/sh\n", 0o644),
		File("etc/old.conf", "obsolete\n", 0o644),
		File("srv/data", "payload\n", 0o644),
		File("usr/bin/tool", "tool\n", 0o755),
		File("usr/share/doc/readme", "read me\n", 0o644),
		File("var/lib/app/a", "a\n", 0o644),
		File("var/lib/app/b", "bb\n", 0o644),
		File("var/lib/app/c/d", "ddd\n", 0o644),
	}
}

// runContainer makes a container's layer over imageLayer and changes it
// through the mounted tree as a process would: it adds, replaces, deletes,
// changes a mode, replaces a directory with an empty one (rm -rf; mkdir,
// which an overlay upper layer keeps as an opaque directory) and removes a
// directory tree. The container stays mounted. It returns the changes Docker
// reports for that and the bytes they take.
func runContainer(e *env) (dir string, want []graphdriver.Change, size int64) {
	e.layer("image", "", imageLayer()...)
	e.createRW("ctr", "image")
	dir = e.get("ctr")

	writeFile(e.t, dir, "etc/new", "new file\n")
	writeFile(e.t, dir, "etc/hostname", "container host\n")
	removeAll(e.t, dir, "etc/old.conf")
	removeAll(e.t, dir, "var/lib/app")
	mkdir(e.t, dir, "var/lib/app")
	writeFile(e.t, dir, "var/lib/app/fresh", "fresh\n")
	if err := os.Chmod(filepath.Join(dir, "srv/data"), 0o600); err != nil {
		e.t.Fatal(err)
	}
	mkdir(e.t, dir, "opt/new/deep")
	writeFile(e.t, dir, "opt/new/deep/file", "deep\n")
	removeAll(e.t, dir, "usr/share/doc")

	want = []graphdriver.Change{
		modify("/etc"), add("/etc/new"), modify("/etc/hostname"), del("/etc/old.conf"),
		modify("/var"), modify("/var/lib"), modify("/var/lib/app"),
		del("/var/lib/app/a"), del("/var/lib/app/b"), del("/var/lib/app/c"), add("/var/lib/app/fresh"),
		modify("/srv"), modify("/srv/data"),
		add("/opt"), add("/opt/new"), add("/opt/new/deep"), add("/opt/new/deep/file"),
		modify("/usr"), modify("/usr/share"), del("/usr/share/doc"),
	}
	// New and rewritten files, and srv/data, which a mode change copies up.
	size = int64(len("new file\n") + len("container host\n") + len("fresh\n") +
		len("payload\n") + len("deep\n"))
	return dir, want, size
}

// testContainerChanges checks Changes and DiffSize of a container's layer
// while it is mounted and after it was released, as `docker diff` and
// `docker ps -s` may ask either way.
func testContainerChanges(e *env) {
	_, want, size := runContainer(e)

	for _, state := range []string{"while mounted", "after Put"} {
		if state == "after Put" {
			e.put("ctr")
		}
		changes, err := e.d.Changes(id("ctr"), id("image"))
		if err != nil {
			e.t.Fatalf("Changes %s failed: %v", state, err)
		}
		checkChanges(e.t, "Changes "+state, changes, want...)

		got, err := e.d.DiffSize(id("ctr"), id("image"))
		if err != nil {
			e.t.Fatalf("DiffSize %s failed: %v", state, err)
		}
		if got != size {
			e.t.Errorf("DiffSize %s is %d, want %d: the bytes of the files added or changed",
				state, got, size)
		}
	}
}

// testCommitRoundTrip commits the container as `docker commit` does, Diff
// against the image applied as a new layer on the image, and compares the
// result with the container's tree.
func testCommitRoundTrip(e *env) {
	runContainer(e)
	e.put("ctr")

	raw, entries := e.diffTar("ctr", "image")
	deleted := []string{"etc/old.conf", "usr/share/doc", "var/lib/app/a", "var/lib/app/b", "var/lib/app/c/d"}
	for _, p := range deleted {
		if !deletedOnWire(entries, p) {
			e.t.Errorf("Diff of the container holds no whiteout that deletes %s", p)
		}
	}
	checkAUFSOnWire(e, "Diff of the container", entries)

	e.create("committed", "image")
	if _, err := e.d.ApplyDiff(id("committed"), id("image"), bytes.NewReader(raw)); err != nil {
		e.t.Fatalf("ApplyDiff of the container's Diff failed: %v", err)
	}
	e.checkSameLayers("ctr", "committed")
}
