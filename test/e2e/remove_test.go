package e2e

import (
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/test/dockertest"
)

// TestRemoveLeavesNothing removes the containers and images made on a thin
// image and checks that the plugin's home keeps no mount and nothing of
// their layers.
func TestRemoveLeavesNothing(t *testing.T) {
	cvmfsRoot := newCVMFSRoot(t)
	desc := publishThin(t, cvmfsRoot, thinLayers())
	d := startWithPlugin(t, cvmfsRoot)

	before, err := dockertest.Tree(d.Home)
	if err != nil {
		t.Fatal(err)
	}

	importThin(t, d, desc.JSON(), thinRef)
	d.MustDocker(t, "run", "--name", "e2e-rm", "--network", "none", thinRef, "sh", "-c", changeScript)
	d.MustDocker(t, "commit", "e2e-rm", "e2e/committed")
	d.MustDocker(t, "create", "--name", "e2e-rm-created", "--network", "none", "e2e/committed", "true")
	ids := d.DriverIDs(t)
	if len(ids) < 6 { // thin, committed, and two containers with an init layer each
		t.Fatalf("dockerd's layer database names %d driver ids, want at least 6: %v", len(ids), ids)
	}

	d.MustDocker(t, "rm", "e2e-rm", "e2e-rm-created")
	d.MustDocker(t, "rmi", "e2e/committed", thinRef)
	if left := strings.TrimSpace(d.MustDocker(t, "images", "-aq")); left != "" {
		t.Fatalf("images left after docker rmi: %s", left)
	}

	mounts, err := dockertest.MountsUnder(d.Home)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mounts {
		if m != d.Home {
			t.Errorf("mount left in the plugin's home after docker rm and rmi: %s", m)
		}
	}

	after, err := dockertest.Tree(d.Home)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range leftovers(before, after, ids) {
		t.Errorf("left in the plugin's home after docker rm and rmi: %s", p)
	}
}

// leftovers returns the paths of after that name one of the driver ids or
// point to one, and those that were not in before and are not empty
// directories: whatever the removed layers left behind.
func leftovers(before, after map[string]dockertest.TreeEntry, ids []string) []string {
	nonEmpty := make(map[string]bool)
	for p := range after {
		nonEmpty[filepath.Dir(p)] = true
	}

	var left []string
	for p, e := range after {
		_, old := before[p]
		switch {
		case mentionsAny(p+" "+string(e), ids):
			left = append(left, p+" ("+string(e)+", named after a removed layer)")
		case !old && (e != "dir" || nonEmpty[p]):
			left = append(left, p+" ("+string(e)+", new since the daemon started)")
		}
	}
	sort.Strings(left)
	return left
}

// mentionsAny reports whether s contains one of the ids.
func mentionsAny(s string, ids []string) bool {
	for _, id := range ids {
		if strings.Contains(s, id) {
			return true
		}
	}
	return false
}

func TestLeftovers(t *testing.T) {
	const id = "0123abcd"
	before := map[string]dockertest.TreeEntry{"l": "dir", "state.json": "file (----------)"}
	tests := []struct {
		name  string
		after map[string]dockertest.TreeEntry
		want  int
	}{
		{name: "as before", after: before, want: 0},
		{name: "new empty directory", after: tree("l", "dir", "tmp", "dir"), want: 0},
		{name: "layer directory", after: tree("l", "dir", id, "dir"), want: 1},
		{name: "dangling link", after: tree("l", "dir", "l/X", "symlink -> ../"+id+"/diff"), want: 1},
		{name: "new directory with content", after: tree("x", "dir", "x/diff", "dir"), want: 1},
		{name: "new file", after: tree("x", "file (----------)"), want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := leftovers(before, tt.after, []string{id}); len(got) != tt.want {
				t.Errorf("leftovers() = %q, want %d entries", got, tt.want)
			}
		})
	}
}

// tree makes a tree from pairs of path and entry.
func tree(pairs ...string) map[string]dockertest.TreeEntry {
	t := make(map[string]dockertest.TreeEntry)
	for i := 0; i+1 < len(pairs); i += 2 {
		t[pairs[i]] = dockertest.TreeEntry(pairs[i+1])
	}
	return t
}
