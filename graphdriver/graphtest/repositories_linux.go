package graphtest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/graphdriver"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/cvmfs"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/cvmfs/cvmfstest"
)

// RepositoriesFactory builds a driver as Factory does, one that mounts the
// repositories of thin images itself through repos: the "internal" mount
// method. repos is new for every driver, as in a plugin that was started
// again.
type RepositoriesFactory func(t testing.TB, home, cvmfsRoot string, repos *cvmfs.Repositories) graphdriver.Driver

// RunRepositories runs the cases of the internal mount method against the
// drivers newDriver builds. The repositories are mounted by package cvmfs's
// Client running a stand-in for cvmfs2 (package cvmfstest), which
// bind-mounts a local directory where the client would mount the
// repository: the first Get of a layer above a thin layer mounts its
// repository, later ones share it, the last Put unmounts it, a client that
// fails leaves nothing behind, and a restarted driver keeps counting the
// layers the old one mounted. Cases skip when the test does not run as
// root.
func RunRepositories(t *testing.T, newDriver RepositoriesFactory, opts Options) {
	if os.Geteuid() != 0 {
		t.Skip("graphtest needs root: backends mount file systems, " +
			"and the fixtures set owners and make device nodes")
	}
	binary := cvmfstest.Build(t)

	cases := []struct {
		name string
		run  func(e *env, s *cvmfstest.StandIn)
	}{
		{"mount-on-first-get", testRepoMountOnFirstGet},
		{"client-fails", testRepoClientFails},
		{"restart", testRepoRestart},
		{"cleanup", testRepoCleanup},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := cvmfstest.New(t, binary)
			factory := func(t testing.TB, home, cvmfsRoot string) graphdriver.Driver {
				client := &cvmfs.Client{Root: cvmfsRoot, Binary: s.Binary, UID: os.Getuid(), GID: os.Getgid()}
				return newDriver(t, home, cvmfsRoot, cvmfs.NewRepositories(client))
			}
			c.run(newEnv(t, factory, opts), s)
		})
	}
}

// publishInSource publishes the thin image's layers in the stand-in's
// source, where only a mount makes them appear below the CernVM-FS root,
// and makes a thin layer "thin" that lists them.
func publishInSource(e *env, s *cvmfstest.StandIn) {
	e.t.Helper()
	repo := e.publish(thinRepoLayers(overlayFormat))
	if err := os.Rename(filepath.Join(e.cvmfsRoot, thinRepo), s.RepoDir(thinRepo)); err != nil {
		e.t.Fatal(err)
	}
	e.layer("thin", "", File("thin.json", thinJSON(e.t, descriptor(repo)), 0o644))
}

// repoMounts returns the mount points below the CernVM-FS root.
func (e *env) repoMounts() []string {
	e.t.Helper()
	return mountpoints(mountsUnder(e.t, e.cvmfsRoot))
}

// assertRepo checks whether the repository is mounted, once, and how many
// times the client was run.
func (e *env) assertRepo(s *cvmfstest.StandIn, when string, mounted bool, clientRuns int) {
	e.t.Helper()
	var want []string
	if mounted {
		want = []string{filepath.Join(e.cvmfsRoot, thinRepo)}
	}
	if got := e.repoMounts(); !slices.Equal(got, want) {
		e.t.Errorf("%s, mounted below the CernVM-FS root: %q, want %q", when, got, want)
	}
	if got := s.Mounts(e.t); len(got) != clientRuns {
		e.t.Errorf("%s, the client was run for %q, want %d runs", when, got, clientRuns)
	}
}

// testRepoMountOnFirstGet mounts two containers of a thin image: the first
// Get mounts the repository, the other Gets share it, and the last Put
// unmounts it. Changes of a container that is not mounted reads the
// repository layers below it, so it holds the repository while it does.
func testRepoMountOnFirstGet(e *env, s *cvmfstest.StandIn) {
	status := make(map[string]string)
	for _, kv := range e.d.Status() {
		status[kv[0]] = kv[1]
	}
	if got := status["Mount Method"]; got != "internal" {
		e.t.Errorf("Status shows Mount Method %q, want internal", got)
	}

	publishInSource(e, s)
	e.createRW("ctr1", "thin")
	e.createRW("ctr2", "thin")
	e.assertRepo(s, "before any Get", false, 0)

	dir := e.get("ctr1")
	e.assertRepo(s, "after the first Get", true, 1)
	CheckTree(e.t, dir, thinImageView()...)
	writeFile(e.t, dir, "etc/hostname", "container host\n")
	e.get("ctr1")
	e.get("ctr2")
	e.assertRepo(s, "after Gets of a second layer on the repository", true, 1)

	e.put("ctr1")
	e.put("ctr1")
	e.assertRepo(s, "after the Puts of one of two layers", true, 1)
	e.put("ctr2")
	e.assertRepo(s, "after the last Put", false, 1)
	e.assertNoMounts("after the last Put")

	changes, err := e.d.Changes(id("ctr1"), id("thin"))
	if err != nil {
		e.t.Fatalf("Changes of a container that is not mounted failed: %v", err)
	}
	checkChanges(e.t, "Changes of a container that is not mounted", changes,
		modify("/etc"), modify("/etc/hostname"))
	e.assertRepo(s, "after Changes", false, 2)

	e.remove("ctr1", "ctr2", "thin")
	e.assertRepo(s, "after removing every layer", false, 2)
}

// testRepoClientFails runs a client that cannot mount the repository: the
// Get fails with an error naming the repository and holding the client's
// words, nothing is mounted, and no reference is left, so that a Get once
// the repository can be mounted mounts it.
func testRepoClientFails(e *env, s *cvmfstest.StandIn) {
	publishInSource(e, s)
	held := filepath.Join(e.scratch, "held")
	if err := os.Rename(s.RepoDir(thinRepo), held); err != nil {
		e.t.Fatal(err)
	}
	e.createRW("ctr", "thin")

	_, err := e.d.Get(id("ctr"), "")
	if err == nil {
		e.t.Fatal("Get succeeded although the client failed")
	}
	for _, want := range []string{id("ctr"), thinRepo, "Failed to initialize root file catalog"} {
		if !strings.Contains(err.Error(), want) {
			e.t.Errorf("the error of the failed Get does not mention %q: %v", want, err)
		}
	}
	e.assertRepo(s, "after the failed Get", false, 1)
	e.assertNoMounts("after the failed Get")

	if err := os.Rename(held, s.RepoDir(thinRepo)); err != nil {
		e.t.Fatal(err)
	}
	dir := e.get("ctr")
	e.assertRepo(s, "after a Get with a working client", true, 2)
	CheckTree(e.t, dir, thinImageView()...)
	e.put("ctr")
	e.assertRepo(s, "after the Put", false, 2)
	e.remove("ctr", "thin")
}

// testRepoRestart restarts the driver, as when the plugin is killed, while
// two layers on the repository are mounted. The new driver counts them: a
// third layer does not mount the repository again, and the repository
// stays until the last of the three is Put.
func testRepoRestart(e *env, s *cvmfstest.StandIn) {
	publishInSource(e, s)
	for _, name := range []string{"ctr1", "ctr2", "ctr3"} {
		e.createRW(name, "thin")
	}
	e.get("ctr1")
	e.get("ctr2")

	e.restart()
	e.assertRepo(s, "after the restart", true, 1)
	dir := e.get("ctr3")
	e.assertRepo(s, "after a Get on the restarted driver", true, 1)
	CheckTree(e.t, dir, thinImageView()...)

	e.put("ctr1")
	e.put("ctr3")
	e.assertRepo(s, "after two of three Puts", true, 1)
	e.put("ctr2")
	e.assertRepo(s, "after the last Put", false, 1)
	e.assertNoMounts("after the last Put")
	e.remove("ctr1", "ctr2", "ctr3", "thin")
}

// testRepoCleanup shuts the driver down, as dockerd does, with a layer
// mounted: the layer and its repository are unmounted.
func testRepoCleanup(e *env, s *cvmfstest.StandIn) {
	publishInSource(e, s)
	e.createRW("ctr", "thin")
	e.get("ctr")
	e.assertRepo(s, "after the Get", true, 1)

	e.cleanup()
	e.assertRepo(s, "after Cleanup", false, 1)
	e.assertNoMounts("after Cleanup")
}
