package e2e

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/test/dockertest"
)

// readmeInstallMarker starts the README's install instructions.
const readmeInstallMarker = "<!-- install:"

// codeBlock is a fenced block of the README.
type codeBlock struct {
	lang string
	text string
}

// readmeInstallBlocks returns the fenced blocks of the README's install
// instructions: from the marker to the next heading.
func readmeInstallBlocks(t *testing.T) []codeBlock {
	t.Helper()

	f, err := os.Open(filepath.Join(moduleDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	var blocks []codeBlock
	var cur *codeBlock
	started := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case !started:
			started = strings.HasPrefix(line, readmeInstallMarker)
		case cur != nil && line == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.text += line + "\n"
		case strings.HasPrefix(line, "```"):
			cur = &codeBlock{lang: strings.TrimPrefix(line, "```")}
		case strings.HasPrefix(line, "#"):
			return blocks
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if !started {
		t.Fatalf("README.md has no %q marker", readmeInstallMarker)
	}
	return blocks
}

// TestManagedReadmeInstall follows the README's install instructions word
// by word on a daemon of its own, as a new user would: `make install` in
// the clone with the docker client pointed at the daemon, the daemon
// configuration it shows, a restart of dockerd, and the check it gives.
// The only change is the CernVM-FS directory: this machine has no /cvmfs,
// so the test's own stands in for it. Then a thin image runs.
func TestManagedReadmeInstall(t *testing.T) {
	blocks := readmeInstallBlocks(t)
	if len(blocks) != 3 || blocks[0].lang != "sh" || blocks[1].lang != "json" || blocks[2].lang != "sh" {
		t.Fatalf("the README's install instructions hold %d blocks, want sh (install), json (daemon.json) and sh (check): %q",
			len(blocks), blocks)
	}
	install, config, check := blocks[0].text, blocks[1].text, blocks[2].text

	cvmfsRoot := newSharedCVMFSRoot(t)
	layers := thinLayers()
	desc := publishThin(t, cvmfsRoot, layers)
	dockertest.Require(t)
	m := dockertest.StartBare(t)

	const readmeSource = "cvmfs.source=/cvmfs"
	if !strings.Contains(install, readmeSource) {
		t.Fatalf("the README's install command does not set %s:\n%s", readmeSource, install)
	}
	install = strings.ReplaceAll(install, readmeSource, "cvmfs.source="+cvmfsRoot)
	for line := range strings.Lines(install) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			m.Shell(t, moduleDir, line)
		}
	}
	m.FindPlugin(t, dockertest.ManagedPluginName)

	m.RestartWithConfig(t, []byte(config), dockertest.ManagedPluginName)

	if got := m.Shell(t, moduleDir, strings.TrimSpace(check)); got != dockertest.ManagedPluginName+"\n" {
		t.Errorf("the README's check printed %q, want %q", got, dockertest.ManagedPluginName+"\n")
	}
	if got := m.MustDocker(t, "plugin", "inspect", "--format", "{{.Config.Description}}", m.PluginName); !strings.Contains(got, "(version ") {
		t.Errorf("the plugin's description carries no version: %q", got)
	}
	importThin(t, m.Daemon, desc.JSON(), thinRef)
	checkListing(t, m.Daemon, thinRef, expectListing(t, layers...))
}
