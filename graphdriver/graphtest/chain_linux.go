package graphtest

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/graphdriver"
)

// defaultDepth is how many layers the deep chain stacks below its top layer
// when the backend declares no limit: Docker's overlay2 limit.
const defaultDepth = 128

func chainCases() []testCase {
	return []testCase{
		{name: "snapshots", run: testSnapshotChain},
		{name: "deep", run: testDeepChain},
	}
}

// testSnapshotChain stacks ten layers, each adding files and a directory,
// replacing a file, and deleting a file and a directory that earlier layers
// added. All ten are mounted at once and each must show its own state.
func testSnapshotChain(e *env) {
	const depth = 10
	files := make(map[string]string)
	views := make([][]Entry, depth)
	parent := ""
	for i := range depth {
		layer := []Entry{
			File(fmt.Sprintf("layers/%d", i), strings.Repeat("x", i+1), 0o644),
			File(fmt.Sprintf("dirs/%d/file", i), fmt.Sprintf("file of layer %d\n", i), 0o644),
			File("counter", strings.Repeat("#", i+1), 0o644),
		}
		files[fmt.Sprintf("layers/%d", i)] = strings.Repeat("x", i+1)
		files[fmt.Sprintf("dirs/%d/file", i)] = fmt.Sprintf("file of layer %d\n", i)
		files["counter"] = strings.Repeat("#", i+1)
		if i >= 2 {
			layer = append(layer, Whiteout(fmt.Sprintf("layers/%d", i-2)))
			delete(files, fmt.Sprintf("layers/%d", i-2))
		}
		if i >= 3 {
			layer = append(layer, Whiteout(fmt.Sprintf("dirs/%d", i-3)))
			delete(files, fmt.Sprintf("dirs/%d/file", i-3))
		}

		name := fmt.Sprintf("layer%d", i)
		e.layer(name, parent, layer...)
		views[i] = filesView(files)
		parent = name
	}

	dirs := make([]string, depth)
	for i := range depth {
		dirs[i] = e.get(fmt.Sprintf("layer%d", i))
	}
	for i := range depth {
		if !CheckTree(e.t, dirs[i], views[i]...) {
			e.t.Logf("that was layer %d of the chain", i)
		}
	}
	for i := range depth {
		e.put(fmt.Sprintf("layer%d", i))
	}
	e.assertNoMounts("after every layer of the chain was released")
}

// filesView declares a tree of 0644 files, parents implied.
func filesView(files map[string]string) []Entry {
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	view := make([]Entry, 0, len(paths))
	for _, p := range paths {
		view = append(view, File(p, files[p], 0o644))
	}
	return view
}

// testDeepChain mounts a layer with Options.MaxLowerLayers layers below it
// (128 without a limit), every one of them visible. With a limit, a layer
// one deeper must be refused, at Create or at Get, with an error that names
// the limit: not a kernel error from a mount that was attempted anyway.
func testDeepChain(e *env) {
	depth := e.opts.MaxLowerLayers
	if depth == 0 {
		depth = defaultDepth
	}

	files := make(map[string]string)
	parent := ""
	for i := 0; i <= depth; i++ {
		p := fmt.Sprintf("f%03d", i)
		e.layer(fmt.Sprintf("deep%d", i), parent, File(p, strconv.Itoa(i), 0o644))
		files[p] = strconv.Itoa(i)
		parent = fmt.Sprintf("deep%d", i)
	}
	e.check(parent, filesView(files)...)

	if e.opts.MaxLowerLayers == 0 {
		return
	}
	beyond := fmt.Sprintf("deep%d", depth+1)
	err := e.d.Create(id(beyond), id(parent), graphdriver.CreateOpts{})
	if err == nil {
		if _, err = e.d.Get(id(beyond), ""); err == nil {
			e.put(beyond)
			e.t.Fatalf("mounted a layer with %d layers below it, beyond the limit of %d", depth+1, depth)
		}
	} else if e.d.Exists(id(beyond)) {
		e.t.Errorf("a refused Create left layer %s behind", beyond)
	}

	limit := strconv.Itoa(depth)
	if !strings.Contains(err.Error(), limit) {
		e.t.Errorf("a layer beyond the limit was refused with an error that does not name the limit %s: %v",
			limit, err)
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		e.t.Errorf("a layer beyond the limit was refused by the kernel (%v), not by the driver: %v",
			errno, err)
	}
	e.assertNoMounts("after the layer beyond the limit was refused")
}
