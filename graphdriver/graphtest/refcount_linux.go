package graphtest

import (
	"os"
	"path/filepath"
	"sync"
)

func refcountCases() []testCase {
	return []testCase{
		{name: "concurrent", run: testConcurrentGetPut},
		{name: "nested", run: testNestedGetPut},
		{name: "unbalanced-put", run: testUnbalancedPut},
	}
}

// testConcurrentGetPut has many goroutines mount and release the same
// layers and different ones at once, each holding two references at a time.
// Run it with -race. Afterwards nothing may be mounted.
func testConcurrentGetPut(e *env) {
	const (
		workers = 16
		rounds  = 20
	)
	e.layer("base", "", File("who", "base", 0o644))
	e.layer("ro", "base", File("who", "ro", 0o644))
	e.createRW("rw", "base")
	dir := e.get("rw")
	writeFile(e.t, dir, "who", "rw")
	e.put("rw")
	layers := []string{"base", "ro", "rw"}

	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				getTwiceAndPut(e, layers[(w+r)%len(layers)])
			}
		})
	}
	wg.Wait()
	e.assertNoMounts("after every Get was matched by a Put")
}

// getTwiceAndPut takes two references to a layer, reads it and releases
// both. It reports failures with Errorf, as it runs off the test goroutine.
func getTwiceAndPut(e *env, name string) {
	dir, err := e.d.Get(id(name), "")
	if err != nil {
		e.t.Errorf("Get(%s) failed: %v", name, err)
		return
	}
	defer func() {
		if err := e.d.Put(id(name)); err != nil {
			e.t.Errorf("Put(%s) failed: %v", name, err)
		}
	}()

	again, err := e.d.Get(id(name), "")
	if err != nil {
		e.t.Errorf("second Get(%s) failed: %v", name, err)
		return
	}
	if again != dir {
		e.t.Errorf("Get(%s) returned %s, then %s while still held", name, dir, again)
	}
	if who, err := os.ReadFile(filepath.Join(dir, "who")); err != nil || string(who) != name {
		e.t.Errorf("layer %s mounted at %s shows who=%q (%v)", name, dir, who, err)
	}
	if err := e.d.Put(id(name)); err != nil {
		e.t.Errorf("Put(%s) failed: %v", name, err)
	}
}

// testNestedGetPut checks that a layer mounted twice stays mounted and
// readable until its last Put.
func testNestedGetPut(e *env) {
	e.layer("base", "", File("who", "base", 0o644))
	e.layer("child", "base", File("who", "child", 0o644))

	dir := e.get("child")
	mounted := mountAt(e.t, dir) != nil
	if again := e.get("child"); again != dir {
		e.t.Errorf("Get returned %s, then %s while still held", dir, again)
	}
	e.put("child")
	if mounted && mountAt(e.t, dir) == nil {
		e.t.Fatal("the first of two Puts unmounted the layer")
	}
	CheckTree(e.t, dir, File("who", "child", 0o644))
	e.put("child")
	e.assertNoMounts("after the last Put")
}

// testUnbalancedPut releases layers more often than they were mounted.
// Docker's overlay2 logs that at debug level and returns nil, and dockerd
// relies on it: a Put it repeats after an error must not fail. So a Put
// without a Get must succeed and must not make the count negative: the next
// Get and Put still mount and unmount.
func testUnbalancedPut(e *env) {
	e.layer("base", "", File("who", "base", 0o644))
	e.layer("child", "base", File("who", "child", 0o644))

	e.check("child", File("who", "child", 0o644))
	if err := e.d.Put(id("child")); err != nil {
		e.t.Errorf("a Put without a Get failed: %v", err)
	}
	if err := e.d.Put(id("base")); err != nil {
		e.t.Errorf("a Put of a layer never mounted failed: %v", err)
	}
	e.assertNoMounts("after Puts without Gets")

	dir := e.get("child")
	mounted := mountAt(e.t, dir) != nil
	e.get("child")
	e.put("child")
	if mounted && mountAt(e.t, dir) == nil {
		e.t.Error("after a Put without a Get, the first of two Puts unmounted the layer: " +
			"the count went below zero")
	}
	CheckTree(e.t, dir, File("who", "child", 0o644))
	e.put("child")
	e.assertNoMounts("after the last Put")
}
