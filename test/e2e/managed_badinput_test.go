package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/test/dockertest"
)

// TestManagedBadSetting sets values the plugin cannot run with. Enabling
// it fails, the dockerd log holds one error line from the plugin, one
// sentence that names the setting and what to do, and the driver's home,
// with the images in it, is left as it was: with the setting corrected,
// the plugin is enabled again at once and the images run.
func TestManagedBadSetting(t *testing.T) {
	m, _ := startThinManaged(t, false)
	checkThinRuns(t, m)

	m.SwitchToBuiltin(t)
	m.MustDocker(t, "plugin", "disable", m.PluginName)
	before, err := dockertest.Tree(m.PropagatedMount())
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		setting, good string
		want          string
	}{
		{"BACKEND=zfs", "BACKEND=auto", `unknown backend "zfs": valid backends are auto, `},
		{"COMMIT_MODE=publish", "COMMIT_MODE=local",
			`commit mode "publish" is not implemented: layers committed on thin images can only be kept as ordinary local layers; use "local"`},
		{"MOUNT_METHOD=internal", "MOUNT_METHOD=external",
			`mount method "internal" needs the CernVM-FS client: cvmfs2 not found in PATH; install cvmfs (the managed plugin: build it with make plugin-dir CVMFS_CLIENT=/usr/bin/cvmfs2) or use mount method external`},
	}
	for _, tt := range tests {
		t.Run(tt.setting, func(t *testing.T) {
			m.MustDocker(t, "plugin", "set", m.PluginName, tt.setting)
			logBefore := len(m.PluginLog())
			if res := m.Docker(t, "plugin", "enable", m.PluginName); res.ExitCode == 0 {
				t.Fatalf("the plugin was enabled with %s", tt.setting)
			}

			lines := m.PluginLog()[logBefore:]
			// dockerd quotes the plugin's line in its own.
			line := strings.ReplaceAll(strings.Join(lines, "\n"), `\"`, `"`)
			if len(lines) != 1 || !strings.Contains(line, "level=error") || !strings.Contains(line, tt.want) {
				t.Errorf("the plugin logged %d lines for %s:\n%s\nwant one error line with %q",
					len(lines), tt.setting, line, tt.want)
			}
			m.MustDocker(t, "plugin", "set", m.PluginName, tt.good)
		})
	}

	after, err := dockertest.Tree(m.PropagatedMount())
	if err != nil {
		t.Fatal(err)
	}
	if diff := treeDiff(before, after); diff != "" {
		t.Errorf("the failed starts changed the plugin's files (-before +after):\n%s", diff)
	}
	m.MustDocker(t, "plugin", "enable", m.PluginName)
	if err := m.SwitchToPlugin(t); err != nil {
		t.Fatal(err)
	}
	checkThinRuns(t, m)
}

// TestManagedMissingCVMFSSource points the plugin's /cvmfs at a host
// directory that does not exist: enabling fails with Docker's own message
// naming it, and nothing is created there.
func TestManagedMissingCVMFSSource(t *testing.T) {
	dockertest.Require(t)
	missing := filepath.Join(t.TempDir(), "no-cvmfs")
	m := dockertest.InstallManaged(t, dockertest.ManagedConfig{
		PluginDir:   pluginDir(t),
		CVMFSSource: newSharedCVMFSRoot(t),
	})
	m.MustDocker(t, "plugin", "disable", m.PluginName)
	m.MustDocker(t, "plugin", "set", m.PluginName, "cvmfs.source="+missing)

	res := m.Docker(t, "plugin", "enable", m.PluginName)
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, missing) ||
		!strings.Contains(res.Stderr, "no such file or directory") {
		t.Errorf("enabling the plugin with a missing CernVM-FS directory: %s", res)
	}
	if _, err := os.Lstat(missing); err == nil {
		t.Errorf("the failed enable created %s", missing)
	}
}

// TestManagedMissingCVMFSRoot sets CVMFS_ROOT to a directory that does
// not exist in the plugin. The plugin warns once and serves regular images;
// a thin image fails with one sentence that names the layer directory and
// says to check that the repository is mounted.
func TestManagedMissingCVMFSRoot(t *testing.T) {
	cvmfsRoot := newSharedCVMFSRoot(t)
	desc := publishThin(t, cvmfsRoot, thinLayers())
	const root = "/cvmfs/no-such-dir"
	m := startManaged(t, cvmfsRoot, "CVMFS_ROOT="+root)

	log := strings.Join(m.PluginLog(), "\n")
	if !strings.Contains(log, "CernVM-FS root is not a usable directory") || !strings.Contains(log, root) {
		t.Errorf("the plugin log does not warn about the missing CernVM-FS root:\n%s", log)
	}
	importBase(t, m.Daemon)
	if got := m.Run(t, baseRef, "echo", "regular"); got != "regular\n" {
		t.Errorf("a regular image printed %q", got)
	}

	importThin(t, m.Daemon, desc.JSON(), thinRef)
	res := m.Docker(t, "run", "--rm", "--network", "none", thinRef, "true")
	for _, want := range []string{"cvmfs://" + repo + "/layers/", root + "/" + repo + "/layers/", "does not exist",
		"check that the CernVM-FS repository " + repo + " is mounted"} {
		if res.ExitCode == 0 || !strings.Contains(res.Stderr, want) {
			t.Errorf("running the thin image without its CernVM-FS root: want an error with %q: %s", want, res)
		}
	}
	checkNoHomeMounts(t, m, "after the failed run")
}

// TestManagedRepositoryNotMounted runs a thin image whose repository is
// not mounted: the run fails with one sentence naming the layer, its URL
// and path and telling to check that the repository is mounted. Once the
// host mounts the repository, while the plugin runs, the image runs: the
// mount propagates into the plugin. When it is gone again, the run fails
// again the same way.
func TestManagedRepositoryNotMounted(t *testing.T) {
	cvmfsRoot := newSharedCVMFSRoot(t)
	staging := filepath.Join(t.TempDir(), "staging")
	layers := thinLayers()
	desc := publishThin(t, staging, layers)
	m := startManaged(t, cvmfsRoot)
	importThin(t, m.Daemon, desc.JSON(), thinRef)

	wantFailure := func(t *testing.T) {
		t.Helper()
		res := m.Docker(t, "run", "--rm", "--network", "none", thinRef, "true")
		for _, want := range []string{"cvmfs://" + repo + "/layers/", "/cvmfs/" + repo + "/layers/", "does not exist",
			"check that the CernVM-FS repository " + repo + " is mounted"} {
			if res.ExitCode == 0 || !strings.Contains(res.Stderr, want) {
				t.Errorf("running a thin image of a repository that is not mounted: want an error with %q: %s", want, res)
			}
		}
		checkNoHomeMounts(t, m, "after the failed run")
	}

	wantFailure(t)

	repoMount := filepath.Join(cvmfsRoot, repo)
	dockertest.BindMount(t, filepath.Join(staging, repo), repoMount)
	checkListing(t, m.Daemon, thinRef, expectListing(t, layers...))

	if err := dockertest.UnmountAll(repoMount); err != nil {
		t.Fatal(err)
	}
	wantFailure(t)
}

// TestManagedTaggedName runs dockerd with -s NAME:latest, which puts a
// colon into the driver's home and so into every path of the overlay mount
// options, where overlay reads a colon as a separator. The driver mounts
// with short relative links instead, and everything works.
func TestManagedTaggedName(t *testing.T) {
	cvmfsRoot := newSharedCVMFSRoot(t)
	layers := thinLayers()
	desc := publishThin(t, cvmfsRoot, layers)
	dockertest.Require(t)
	m := dockertest.StartManaged(t, dockertest.ManagedConfig{
		PluginDir:   pluginDir(t),
		CVMFSSource: cvmfsRoot,
		DriverName:  dockertest.ManagedPluginName + ":latest",
	})
	if !strings.Contains(m.Home, ":latest") {
		t.Fatalf("home %s has no colon", m.Home)
	}
	importBase(t, m.Daemon)
	importThin(t, m.Daemon, desc.JSON(), thinRef)

	c := runDetached(t, m, "e2e-tagged", thinRef)
	options := overlayOptions(t, m.Home)
	if len(options) == 0 {
		t.Fatalf("no overlay mounted below %s for a running container", m.Home)
	}
	for _, o := range options {
		if strings.Contains(o, ":latest") {
			t.Errorf("overlay options hold the home's colon: %s", o)
		}
	}
	m.MustDocker(t, "exec", c, "sh", "-c", "echo tagged > /data/tagged.txt")
	m.MustDocker(t, "commit", c, "e2e/tagged")
	if got := m.Run(t, "e2e/tagged", "cat", "/data/tagged.txt", "/data/c.txt"); got != "tagged\nc from layer 2\n" {
		t.Errorf("a container of the image committed under a tagged driver name read %q", got)
	}
	checkListing(t, m.Daemon, thinRef, expectListing(t, layers...))
	if got := m.Run(t, baseRef, "echo", "regular"); got != "regular\n" {
		t.Errorf("a regular image printed %q", got)
	}
	m.MustDocker(t, "rm", "-f", c)
	checkNoHomeMounts(t, m, "after the container was removed")
}

// overlayOptions returns the super block options of the overlay mounts
// below dir.
func overlayOptions(t *testing.T, dir string) []string {
	t.Helper()

	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var opts []string
	for line := range strings.Lines(string(data)) {
		fields := strings.Fields(line)
		// id parent dev root mountpoint options [optional...] - type source superoptions
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+3 >= len(fields) || len(fields) < 5 {
			continue
		}
		if fields[sep+1] == "overlay" && strings.HasPrefix(fields[4], dir+"/") {
			opts = append(opts, fields[sep+3])
		}
	}
	return opts
}

// treeDiff describes how two trees differ, "-" for a path only in before,
// "+" for one only in after or changed.
func treeDiff(before, after map[string]dockertest.TreeEntry) string {
	var lines []string
	for p, e := range before {
		if a, ok := after[p]; !ok {
			lines = append(lines, "- "+p+" ("+string(e)+")")
		} else if a != e {
			lines = append(lines, "+ "+p+" ("+string(e)+" became "+string(a)+")")
		}
	}
	for p, e := range after {
		if _, ok := before[p]; !ok {
			lines = append(lines, "+ "+p+" ("+string(e)+")")
		}
	}
	return strings.Join(lines, "\n")
}
