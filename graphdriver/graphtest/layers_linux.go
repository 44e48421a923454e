package graphtest

import (
	"strings"

	"golang.org/x/sys/unix"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/graphdriver"
)

func layerCases() []testCase {
	return []testCase{
		{name: "read-only", run: testReadOnlyLayer},
		{name: "read-write", run: testReadWriteLayer},
		{name: "remove-missing", run: testRemoveMissing},
		{name: "missing-parent", run: testMissingParent},
		{name: "storage-opt-refused", run: testStorageOptRefused},
		{name: "get-missing", run: testGetMissing},
		{name: "metadata", run: testMetadata},
	}
}

// testReadOnlyLayer creates an empty layer and one above a base, mounts
// them, and removes them all.
func testReadOnlyLayer(e *env) {
	e.create("empty", "")
	if !e.d.Exists(id("empty")) {
		e.t.Fatal("a created layer does not exist")
	}
	dir := e.get("empty")
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		e.t.Fatal(err)
	}
	// dockerd expects the root of a fresh layer to be a 0755 directory owned
	// by root, as its built-in drivers make it.
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Mode&0o7777 != 0o755 || st.Uid != 0 || st.Gid != 0 {
		e.t.Errorf("root of an empty layer has mode %o and owner %d:%d, want a 0755 directory owned by 0:0",
			st.Mode, st.Uid, st.Gid)
	}
	CheckTree(e.t, dir)
	e.put("empty")

	base := []Entry{File("etc/hostname", "base\n", 0o644)}
	e.layer("base", "", base...)
	e.create("child", "base")
	e.check("child", base...)

	e.remove("child", "base", "empty")
	e.assertNoMounts("after removing every layer")
	e.assertHomeClean("child", "base", "empty")
}

// testReadWriteLayer writes through a container's layer and finds the file
// again after the layer was released and mounted again.
func testReadWriteLayer(e *env) {
	base := []Entry{File("etc/hostname", "base\n", 0o644)}
	e.layer("base", "", base...)
	e.createRW("ctr", "base")

	dir := e.get("ctr")
	writeFile(e.t, dir, "etc/written", "by the container\n")
	e.put("ctr")

	e.check("ctr", append(base, File("etc/written", "by the container\n", 0o644))...)
	e.check("base", base...)

	e.remove("ctr", "base")
	e.assertNoMounts("after removing every layer")
	e.assertHomeClean("ctr", "base")
}

// testRemoveMissing expects Remove of a layer that does not exist, or no
// longer does, to succeed, as Docker's drivers do: dockerd retries removals
// that were cut short.
func testRemoveMissing(e *env) {
	if err := e.d.Remove(id("ghost")); err != nil {
		e.t.Errorf("Remove of a missing layer failed: %v", err)
	}
	e.create("once", "")
	e.remove("once")
	if err := e.d.Remove(id("once")); err != nil {
		e.t.Errorf("a second Remove of a layer failed: %v", err)
	}
}

func testMissingParent(e *env) {
	create := map[string]func(id, parent string, opts graphdriver.CreateOpts) error{
		"Create":          e.d.Create,
		"CreateReadWrite": e.d.CreateReadWrite,
	}
	for method, fn := range create {
		if err := fn(id("orphan"), id("ghost"), graphdriver.CreateOpts{}); err == nil {
			e.t.Errorf("%s with a parent that does not exist succeeded", method)
		}
		if e.d.Exists(id("orphan")) {
			e.t.Errorf("a failed %s left the layer behind", method)
		}
		if err := e.d.Remove(id("orphan")); err != nil {
			e.t.Errorf("Remove after a failed %s: %v", method, err)
		}
	}
	e.assertHomeClean("orphan")
}

// testStorageOptRefused expects a size quota, which none of the backends
// supports, to be refused with an error that names the option, and nothing
// to be left behind.
func testStorageOptRefused(e *env) {
	e.create("base", "")
	opts := graphdriver.CreateOpts{StorageOpt: map[string]string{"size": "1G"}}
	create := map[string]func(id, parent string, opts graphdriver.CreateOpts) error{
		"Create":          e.d.Create,
		"CreateReadWrite": e.d.CreateReadWrite,
	}
	for method, fn := range create {
		err := fn(id("sized"), id("base"), opts)
		switch {
		case err == nil:
			e.t.Errorf("%s with storage option size=1G succeeded", method)
		case !strings.Contains(err.Error(), "size"):
			e.t.Errorf("%s refused storage option size=1G with an error that does not name it: %v",
				method, err)
		}
		if e.d.Exists(id("sized")) {
			e.t.Errorf("a refused %s left the layer behind", method)
			if err := e.d.Remove(id("sized")); err != nil {
				e.t.Fatal(err)
			}
		}
	}
	e.remove("base")
	e.assertHomeClean("sized", "base")
}

func testGetMissing(e *env) {
	if dir, err := e.d.Get(id("ghost"), ""); err == nil {
		e.t.Errorf("Get of a missing layer returned %s", dir)
	}
	if e.d.Exists(id("ghost")) {
		e.t.Error("Get of a missing layer made it exist")
	}
	e.assertNoMounts("after Get of a missing layer")
}

// testMetadata checks the calls behind `docker info` and `docker inspect`.
func testMetadata(e *env) {
	if e.d.String() == "" {
		e.t.Error("String returns no name")
	}
	e.d.Status()
	e.d.Capabilities()

	e.create("base", "")
	if _, err := e.d.GetMetadata(id("base")); err != nil {
		e.t.Errorf("GetMetadata of a layer failed: %v", err)
	}
	if _, err := e.d.GetMetadata(id("ghost")); err == nil {
		e.t.Error("GetMetadata of a missing layer succeeded")
	}
}
