package graphtest

func restartCases() []testCase {
	return []testCase{
		{name: "put-after-restart", run: testPutAfterRestart},
		{name: "get-after-restart", run: testGetAfterRestart},
		{name: "cleanup-after-restart", run: testCleanupAfterRestart},
	}
}

// restartFixture makes a base and a child above it, so that the child's
// Get is a real mount, and returns what the child shows.
func restartFixture(e *env) []Entry {
	e.layer("base", "", File("who", "base", 0o644), File("base-only", "b", 0o644))
	e.layer("child", "base", File("who", "child", 0o644))
	return []Entry{File("who", "child", 0o644), File("base-only", "b", 0o644)}
}

// testPutAfterRestart mounts a layer, restarts the driver as if the plugin
// had been killed, and expects one Put on the new driver to unmount the
// layer the old one mounted: the count must be rebuilt from the mount table.
func testPutAfterRestart(e *env) {
	want := restartFixture(e)
	dir := e.get("child")

	e.restart()
	if !e.d.Exists(id("child")) {
		e.t.Fatal("the layer does not exist after a restart")
	}
	CheckTree(e.t, dir, want...)
	e.put("child")
	if mountAt(e.t, dir) != nil {
		e.t.Errorf("the Put after a restart left %s mounted", dir)
	}
	e.assertNoMounts("after the Put that matched the Get before the restart")

	e.check("child", want...)
	e.assertNoMounts("after a Get and Put on the restarted driver")
}

// testGetAfterRestart mounts a layer, restarts, and mounts it again: the new
// driver must count the old mount, so the first Put keeps it and the second
// unmounts it.
func testGetAfterRestart(e *env) {
	want := restartFixture(e)
	dir := e.get("child")
	mounted := mountAt(e.t, dir) != nil

	e.restart()
	again := e.get("child")
	if again != dir {
		e.t.Errorf("after a restart Get returned %s, before it %s", again, dir)
	}
	CheckTree(e.t, again, want...)

	e.put("child")
	if mounted && mountAt(e.t, dir) == nil {
		e.t.Error("after a restart, one Put undid both the old and the new Get")
	}
	e.put("child")
	e.assertNoMounts("after both Puts")
}

// testCleanupAfterRestart leaves layers mounted by a driver that was killed
// and expects Cleanup on its successor, dockerd's shutdown, to unmount them.
func testCleanupAfterRestart(e *env) {
	restartFixture(e)
	e.createRW("ctr", "child")
	e.get("child")
	e.get("ctr")

	e.restart()
	e.cleanup()
	e.assertNoMounts("after Cleanup")
}
