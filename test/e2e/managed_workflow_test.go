package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/test/dockertest"
)

// Bounds on what a push costs the registry. The busybox layer of the
// regular image is about a megabyte compressed; a thin image is its
// descriptor, a configuration and a manifest, whatever the size of the
// layers it lists.
const (
	minRegularPushBytes = 256 << 10
	maxThinPushBytes    = 16 << 10
)

// workflowImage is an image the everyday workflow runs on, with what the
// checks expect of it.
type workflowImage struct {
	kind string
	ref  string
	// removed is a file of the image the container deletes, in a
	// directory that diff then reports as changed.
	removed, removedDir string
	// inImage is a file of the image's layers and its content.
	inImage, inImageContent string
}

// TestManagedWorkflow runs the everyday Docker workflow through the
// managed plugin, for a regular and a thin image: run, exec, cp in and
// out, diff, commit, export, save and load, a multi-stage build, push to a
// registry, and on a second daemon (a second node sharing the CernVM-FS
// directory, which installs the plugin from the registry that
// `make plugin-push` pushed it to) pull and run; then rm, rmi and system
// prune leave the plugin's home as it was. The thin image must stay thin
// through save and push: the registry stores a few KiB for it.
func TestManagedWorkflow(t *testing.T) {
	cvmfsRoot := newSharedCVMFSRoot(t)
	layers := thinLayers()
	desc := publishThin(t, cvmfsRoot, layers)
	reg := dockertest.StartRegistry(t)
	login := func(t *testing.T, d *dockertest.Daemon) {
		d.MustDocker(t, "login", "-u", reg.User, "-p", reg.Password, reg.Host)
	}
	// The first node pushes the plugin to the registry before it installs
	// its own copy: dockerd 20.10 refuses to create a plugin whose layer
	// it already holds under another name.
	remote := reg.Host + "/" + dockertest.ManagedPluginName + ":e2e"
	dockertest.Require(t)
	m := dockertest.StartManaged(t, dockertest.ManagedConfig{
		PluginDir:   pluginDir(t),
		CVMFSSource: cvmfsRoot,
		Prepare: func(t *testing.T, d *dockertest.Daemon) {
			login(t, d)
			d.Make(t, moduleDir, "plugin-push", "REGISTRY="+reg.Host, "PLUGIN_TAG=e2e", "VERSION=e2e",
				"PLUGIN_DIR="+filepath.Join(t.TempDir(), "plugin"))
			if res := d.Docker(t, "plugin", "inspect", remote); res.ExitCode == 0 {
				t.Errorf("make plugin-push left the plugin %s in the daemon", remote)
			}
		},
	})

	homeBefore, err := dockertest.Tree(m.Home)
	if err != nil {
		t.Fatal(err)
	}
	importBase(t, m.Daemon)
	importThin(t, m.Daemon, desc.JSON(), thinRef)
	busybox, err := os.ReadFile(dockertest.Busybox)
	if err != nil {
		t.Fatal(err)
	}

	images := []workflowImage{
		{kind: "regular", ref: baseRef, removed: "/bin/wc", removedDir: "/bin",
			inImage: "/bin/busybox", inImageContent: string(busybox)},
		{kind: "thin", ref: thinRef, removed: "/data/a.txt", removedDir: "/data",
			inImage: "/data/c.txt", inImageContent: "c from layer 2\n"},
	}
	for _, img := range images {
		t.Run(img.kind, func(t *testing.T) {
			runWorkflow(t, m, reg, img)
		})
	}

	t.Run("second node", func(t *testing.T) {
		second := dockertest.StartManaged(t, dockertest.ManagedConfig{
			CVMFSSource: cvmfsRoot,
			Remote:      remote,
			Prepare:     login,
		})

		second.MustDocker(t, "pull", reg.Host+"/e2e/regular:v1")
		if got := second.Run(t, reg.Host+"/e2e/regular:v1", "echo", "pulled"); got != "pulled\n" {
			t.Errorf("the pulled regular image printed %q", got)
		}

		thin := reg.Host + "/e2e/thin:v1"
		second.MustDocker(t, "pull", thin)
		want := m.MustDocker(t, "image", "inspect", "--format", "{{json .RootFS.Layers}}", thinRef)
		if got := second.MustDocker(t, "image", "inspect", "--format", "{{json .RootFS.Layers}}", thin); got != want {
			t.Errorf("the pulled thin image has layers %s, want the thin layer alone, %s", got, want)
		}
		checkListing(t, second.Daemon, thin, expectListing(t, layers...))
	})

	t.Run("rm rmi prune", func(t *testing.T) {
		ids := m.DriverIDs(t)
		if len(ids) < 6 { // two images, two committed, built layers, containers
			t.Fatalf("dockerd's layer database names %d driver ids, want at least 6: %v", len(ids), ids)
		}
		if ids := strings.Fields(m.MustDocker(t, "ps", "-aq")); len(ids) > 0 {
			m.MustDocker(t, append([]string{"rm", "-f"}, ids...)...)
		}
		for _, img := range images {
			m.MustDocker(t, "rmi", img.ref+"-committed", reg.Host+"/e2e/"+img.kind+":v1")
		}
		m.MustDocker(t, "system", "prune", "--all", "--force")
		if left := strings.TrimSpace(m.MustDocker(t, "images", "-aq")); left != "" {
			t.Fatalf("images left after docker system prune: %s", left)
		}

		checkNoHomeMounts(t, m, "after rm, rmi and prune")
		after, err := dockertest.Tree(m.Home)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range leftovers(homeBefore, after, ids) {
			t.Errorf("left in the plugin's home after rm, rmi and prune: %s", p)
		}
	})
}

// runWorkflow runs the workflow on one image and leaves behind a stopped
// container, the committed image <ref>-committed and the pushed tag
// <registry>/e2e/<kind>:v1.
func runWorkflow(t *testing.T, m *dockertest.Managed, reg *dockertest.Registry, img workflowImage) {
	dir := t.TempDir()
	c := "e2e-" + img.kind
	committed := img.ref + "-committed"

	t.Run("run", func(t *testing.T) {
		got := m.Run(t, img.ref, "cat", img.inImage)
		if got != img.inImageContent {
			t.Errorf("cat %s in a container printed %d bytes, want the %d of the image",
				img.inImage, len(got), len(img.inImageContent))
		}
	})

	t.Run("exec", func(t *testing.T) {
		runDetached(t, m, c, img.ref)
		m.MustDocker(t, "exec", c, "sh", "-c", "mkdir /work && echo exec > /work/exec.txt && rm "+img.removed)
		if got := m.MustDocker(t, "exec", c, "cat", "/work/exec.txt"); got != "exec\n" {
			t.Errorf("exec read back %q", got)
		}
	})

	t.Run("cp", func(t *testing.T) {
		in := filepath.Join(dir, "in.txt")
		if err := os.WriteFile(in, []byte("copied in\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		m.MustDocker(t, "cp", in, c+":/work/in.txt")
		if got := m.MustDocker(t, "exec", c, "cat", "/work/in.txt"); got != "copied in\n" {
			t.Errorf("the file copied in reads %q in the container", got)
		}

		for src, want := range map[string]string{"/work/exec.txt": "exec\n", img.inImage: img.inImageContent} {
			out := filepath.Join(dir, "out-"+filepath.Base(src))
			m.MustDocker(t, "cp", c+":"+src, out)
			if got, err := os.ReadFile(out); err != nil || string(got) != want {
				t.Errorf("docker cp out of %s: %d bytes (%v), want %d", src, len(got), err, len(want))
			}
		}
	})

	t.Run("diff", func(t *testing.T) {
		got := strings.Split(strings.TrimSpace(m.MustDocker(t, "diff", c)), "\n")
		want := []string{"A /work", "A /work/exec.txt", "A /work/in.txt",
			"C " + img.removedDir, "D " + img.removed}
		if diff := dockertest.DiffLines(want, got); diff != "" {
			t.Errorf("docker diff (-want +got):\n%s", diff)
		}
	})

	// committedCheck reads what the container changed, in a new container.
	committedCheck := []string{"sh", "-c", "cat /work/in.txt /work/exec.txt && test ! -e " + img.removed + " && echo gone"}
	const committedWant = "copied in\nexec\ngone\n"

	t.Run("commit", func(t *testing.T) {
		m.MustDocker(t, "commit", c, committed)
		if got := m.Run(t, committed, committedCheck...); got != committedWant {
			t.Errorf("a container of the committed image printed %q, want %q", got, committedWant)
		}
	})

	t.Run("export", func(t *testing.T) {
		archive := filepath.Join(dir, "export.tar")
		m.MustDocker(t, "export", "-o", archive, c)
		f, err := os.Open(archive)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		names, content, err := dockertest.TarNames(f, strings.TrimPrefix(img.inImage, "/"))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(names, "work/in.txt") {
			t.Errorf("export lacks work/in.txt")
		}
		if slices.Contains(names, strings.TrimPrefix(img.removed, "/")) {
			t.Errorf("export holds %s, which the container deleted", img.removed)
		}
		if slices.Contains(names, dockertest.ThinDescriptorName) {
			t.Errorf("export holds the thin image's descriptor")
		}
		if string(content) != img.inImageContent {
			t.Errorf("export holds %d bytes of %s, want %d", len(content), img.inImage, len(img.inImageContent))
		}
	})

	t.Run("save and load", func(t *testing.T) {
		archive := filepath.Join(dir, "save.tar")
		m.MustDocker(t, "save", "-o", archive, committed)
		m.MustDocker(t, "rmi", committed)
		m.MustDocker(t, "load", "-i", archive)
		if got := m.Run(t, committed, committedCheck...); got != committedWant {
			t.Errorf("a container of the loaded image printed %q, want %q", got, committedWant)
		}
		if img.kind != "thin" {
			return
		}
		layerTars, err := dockertest.ArchiveLayers(archive)
		if err != nil {
			t.Fatal(err)
		}
		if len(layerTars) != 2 {
			t.Fatalf("saved image committed on the thin image has %d layers, want 2", len(layerTars))
		}
		names, _, err := dockertest.TarNames(bytes.NewReader(layerTars[0]), "")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(names, []string{dockertest.ThinDescriptorName}) {
			t.Errorf("the saved thin layer holds %q, want thin.json alone", names)
		}
	})

	t.Run("multi-stage build", func(t *testing.T) {
		ctx := filepath.Join(dir, "build")
		dockerfile := "FROM " + img.ref + " AS stage\n" +
			"RUN mkdir /out && echo built from " + img.kind + " > /out/built.txt\n" +
			"FROM " + img.ref + "\n" +
			"COPY --from=stage /out/built.txt /work/built.txt\n" +
			"RUN cat /work/built.txt " + img.inImage + " > /dev/null\n"
		if err := os.MkdirAll(ctx, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
			t.Fatal(err)
		}
		built := "e2e/" + img.kind + "-built"
		m.MustDocker(t, "build", "--network", "none", "-t", built, ctx)
		if got := m.Run(t, built, "cat", "/work/built.txt"); got != "built from "+img.kind+"\n" {
			t.Errorf("a container of the built image read %q", got)
		}
	})

	t.Run("push", func(t *testing.T) {
		tag := reg.Host + "/e2e/" + img.kind + ":v1"
		before, err := dockertest.RegistryBlobBytes(reg)
		if err != nil {
			t.Fatal(err)
		}
		m.MustDocker(t, "tag", img.ref, tag)
		m.MustDocker(t, "push", tag)
		after, err := dockertest.RegistryBlobBytes(reg)
		if err != nil {
			t.Fatal(err)
		}

		stored := after - before
		t.Logf("the registry stores %d bytes for the %s image", stored, img.kind)
		switch img.kind {
		case "thin":
			if stored > maxThinPushBytes {
				t.Errorf("pushing the thin image stored %d bytes in the registry, want at most %d: it did not stay thin",
					stored, maxThinPushBytes)
			}
		default:
			if stored < minRegularPushBytes {
				t.Errorf("pushing the regular image stored %d bytes in the registry, want at least %d: the measure is broken",
					stored, minRegularPushBytes)
			}
		}
	})
}
