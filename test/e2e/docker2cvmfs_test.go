package e2e

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/test/dockertest"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/thinimage"
)

// thinRepo is the repository docker2cvmfs unpacks layers into.
const thinRepo = "thin.e2e.cern.ch"

// sourceRef is the regular image made thin.
const sourceRef = "e2e/src:latest"

// sourceDockerfile builds on the busybox base: a layer with files, a
// symbolic link and a private directory, then one that deletes a file and
// replaces a directory (an opaque directory in the layer tar), then
// configuration that the thin image must keep, all of it set.
const sourceDockerfile = `FROM ` + baseRef + `
RUN mkdir -p /dir/sub /keep && echo old > /dir/f && echo old > /dir/sub/g && echo gone > /gone.txt && \
    echo kept > /keep/k && ln -s /dir/f /abs-link && ln -s ../dir/f /keep/rel-link && mkdir -m 700 /private
RUN rm /gone.txt && rm -rf /dir && mkdir /dir && echo new > /dir/f
ENV APP=thin GREETING="hello thin"
WORKDIR /keep
LABEL org.example.purpose=e2e
EXPOSE 8080
USER 0:0
VOLUME /vol
ENTRYPOINT ["/bin/busybox"]
CMD ["cat", "/dir/f"]
`

// buildSource builds the regular multi-layer image in d with the classic
// builder, whose RUN steps go through the storage driver.
func buildSource(t *testing.T, d *dockertest.Daemon) {
	t.Helper()
	importBase(t, d)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(sourceDockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	d.MustDocker(t, "build", "--network", "none", "-t", sourceRef, dir)
}

// writeLayout writes the docker save archive at archive as an OCI image
// layout at dir, tagged tag.
func writeLayout(t *testing.T, archive, dir, tag string) {
	t.Helper()
	img, err := tarball.ImageFromPath(archive, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})); err != nil {
		t.Fatal(err)
	}
}

// inspect returns a Go template of docker image inspect for image.
func inspect(t *testing.T, d *dockertest.Daemon, image, format string) string {
	t.Helper()
	return strings.TrimSpace(d.MustDocker(t, "image", "inspect", "--format", format, image))
}

// configFormat prints what a thin image must keep of its source.
const configFormat = `{{json .Config.Env}} {{json .Config.Cmd}} {{.Config.WorkingDir}} ` +
	`{{index .Config.Labels "org.example.purpose"}} {{json .Config.ExposedPorts}} ` +
	`{{json .Config.Entrypoint}} {{.Config.User}} {{json .Config.Volumes}}`

// TestDocker2CVMFS makes a regular image thin from every source the tool
// reads, runs each thin image through the plugin and compares the files a
// container sees with those of the regular image, then checks, lists and
// collects the repository.
func TestDocker2CVMFS(t *testing.T) {
	cvmfsRoot := newCVMFSRoot(t)
	d := startWithPlugin(t, cvmfsRoot)
	reg := dockertest.StartRegistry(t)
	buildSource(t, d)

	want := d.Listing(t, sourceRef, nil)
	for _, line := range []string{"d /dir 755", "d /private 700", "l /abs-link /dir/f", "l /keep/rel-link ../dir/f"} {
		if !slices.Contains(want, line) {
			t.Fatalf("the source image lacks %q; its listing:\n%s", line, strings.Join(want, "\n"))
		}
	}
	for _, line := range want {
		if strings.Contains(line, "/gone.txt") || strings.Contains(line, "/dir/sub") {
			t.Fatalf("the source image still shows %q", line)
		}
	}
	wantConfig := inspect(t, d, sourceRef, configFormat)
	for _, set := range []string{`"APP=thin"`, "/keep", "8080/tcp", `["/bin/busybox"]`, " 0:0 ", `"/vol"`} {
		if !strings.Contains(wantConfig, set) {
			t.Fatalf("the source image's configuration %s lacks %s", wantConfig, set)
		}
	}
	if got := d.Run(t, sourceRef); got != "new\n" {
		t.Fatalf("the source image prints %q", got)
	}

	// The same image in a registry, a docker save archive and an OCI layout.
	d.MustDocker(t, "login", "-u", reg.User, "-p", reg.Password, reg.Host)
	pushed := reg.Host + "/e2e/src:v1"
	d.MustDocker(t, "tag", sourceRef, pushed)
	d.MustDocker(t, "push", pushed)
	if reg.TokensIssued() == 0 {
		t.Fatal("the registry was used without a token")
	}
	archive := filepath.Join(t.TempDir(), "src.tar")
	d.MustDocker(t, "save", "-o", archive, sourceRef)
	layoutDir := filepath.Join(t.TempDir(), "layout")
	writeLayout(t, archive, layoutDir, "v1")

	repoArgs := []string{"-r", thinRepo, "--cvmfs-root", cvmfsRoot}
	sources := []struct {
		name  string
		input string
	}{
		{"daemon", sourceRef},
		{"registry", "docker://" + pushed},
		{"archive", "docker-archive:" + archive},
		{"layout", "oci:" + layoutDir + ":v1"},
	}
	for i, src := range sources {
		t.Run("make-thin from "+src.name, func(t *testing.T) {
			thin := "e2e/thin-" + src.name + ":latest"
			args := append([]string{"make-thin", "-i", src.input, "-o", thin, "--progress", "plain"}, repoArgs...)
			res := mustDocker2cvmfs(t, d, args...)

			// The first source unpacks the layers; the others share them.
			if i > 0 && !strings.Contains(res.stderr, "0 layers unpacked") {
				t.Errorf("make-thin from %s unpacked layers again:\n%s", src.name, res.stderr)
			}
			if got := inspect(t, d, thin, "{{len .RootFS.Layers}}"); got != "1" {
				t.Errorf("thin image has %s layers, want 1", got)
			}
			if got := inspect(t, d, thin, configFormat); got != wantConfig {
				t.Errorf("thin image configuration %s, want the source's %s", got, wantConfig)
			}
			if got := inspect(t, d, thin, `{{index .Config.Labels "org.cernvm.thin.origin"}}`); got == "" {
				t.Error("thin image has no origin label")
			}
			if got := d.Run(t, thin); got != "new\n" {
				t.Errorf("the thin image's command printed %q, want %q", got, "new\n")
			}
			if diff := dockertest.DiffLines(want, d.Listing(t, thin, nil)); diff != "" {
				t.Errorf("files in a container of %s differ from the source image (-source +thin):\n%s", thin, diff)
			}
		})
	}

	t.Run("overlay whiteouts on disk", func(t *testing.T) {
		layers, err := filepath.Glob(filepath.Join(cvmfsRoot, thinRepo, "layers", "*"))
		if err != nil {
			t.Fatal(err)
		}
		var whiteout, opaque bool
		for _, l := range layers {
			if fi, err := os.Lstat(filepath.Join(l, "gone.txt")); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				whiteout = true
			}
			buf := make([]byte, 1)
			if n, err := unix.Lgetxattr(filepath.Join(l, "dir"), "trusted.overlay.opaque", buf); err == nil && n == 1 && buf[0] == 'y' {
				opaque = true
			}
			if markers, _ := filepath.Glob(filepath.Join(l, "*", ".wh.*")); len(markers) > 0 {
				t.Errorf("AUFS markers left in %s: %v", l, markers)
			}
		}
		if !whiteout || !opaque {
			t.Errorf("layers hold a character device whiteout for /gone.txt: %v, an opaque /dir: %v", whiteout, opaque)
		}
	})

	t.Run("reproducible", func(t *testing.T) {
		first := inspect(t, d, "e2e/thin-daemon:latest", "{{.Id}}")
		mustDocker2cvmfs(t, d, append([]string{"make-thin", "-i", sourceRef, "-o", "e2e/thin-again", "--progress", "quiet"}, repoArgs...)...)
		if again := inspect(t, d, "e2e/thin-again", "{{.Id}}"); again != first {
			t.Errorf("making the same image thin twice gave %s and %s", first, again)
		}
	})

	t.Run("push and archive outputs", func(t *testing.T) {
		pushedThin := reg.Host + "/e2e/thin:v1"
		mustDocker2cvmfs(t, d, append([]string{"make-thin", "-i", sourceRef, "-o", "docker://" + pushedThin}, repoArgs...)...)
		d.MustDocker(t, "pull", pushedThin)

		thinArchive := filepath.Join(t.TempDir(), "thin.tar")
		mustDocker2cvmfs(t, d, append([]string{"make-thin", "-i", sourceRef, "-o", "docker-archive:" + thinArchive + ":e2e/thin-archived:v1"}, repoArgs...)...)
		d.MustDocker(t, "load", "-i", thinArchive)

		for _, thin := range []string{pushedThin, "e2e/thin-archived:v1"} {
			if diff := dockertest.DiffLines(want, d.Listing(t, thin, nil)); diff != "" {
				t.Errorf("files in a container of %s differ from the source image (-source +thin):\n%s", thin, diff)
			}
		}
	})

	t.Run("thin", func(t *testing.T) {
		res := mustDocker2cvmfs(t, d, append([]string{"thin", "-i", sourceRef}, repoArgs...)...)
		desc, err := thinimage.Parse([]byte(res.stdout))
		if err != nil {
			t.Fatalf("thin printed no descriptor: %v\n%s", err, res.stdout)
		}
		if n := strings.Count(inspect(t, d, sourceRef, "{{json .RootFS.Layers}}"), "sha256:"); len(desc.Layers) != n {
			t.Errorf("descriptor lists %d layers, the source has %d", len(desc.Layers), n)
		}
		sum := sha256.Sum256([]byte(res.stdout))
		record := filepath.Join(cvmfsRoot, thinRepo, ".thin", "descriptors", hex.EncodeToString(sum[:])+".json")
		if _, err := os.Stat(record); err != nil {
			t.Errorf("the descriptor thin prints is not the one make-thin recorded: %v", err)
		}
	})

	t.Run("check", func(t *testing.T) {
		res := mustDocker2cvmfs(t, d, "check", "e2e/thin-daemon", "--cvmfs-root", cvmfsRoot, "--source", sourceRef)
		if !strings.Contains(res.stdout, "OK:") {
			t.Errorf("check reported:\n%s", res.stdout)
		}
		res = mustDocker2cvmfs(t, d, "check", "docker://"+reg.Host+"/e2e/thin:v1", "--cvmfs-root", cvmfsRoot, "--source", "docker://"+pushed)
		if !strings.Contains(res.stdout, "OK:") {
			t.Errorf("check against the registry reported:\n%s", res.stdout)
		}
	})

	t.Run("gc", func(t *testing.T) {
		res := mustDocker2cvmfs(t, d, append([]string{"gc"}, repoArgs...)...)
		if !strings.Contains(res.stdout, "Nothing to remove") {
			t.Errorf("gc of a repository whose layers are all used:\n%s", res.stdout)
		}
		stray := filepath.Join(cvmfsRoot, thinRepo, "layers", strings.Repeat("e", 64))
		if err := os.MkdirAll(stray, 0o755); err != nil {
			t.Fatal(err)
		}
		res = mustDocker2cvmfs(t, d, append([]string{"gc", "--delete"}, repoArgs...)...)
		if !strings.Contains(res.stdout, "Removed unused layer "+stray) {
			t.Errorf("gc --delete:\n%s", res.stdout)
		}
		if _, err := os.Stat(stray); !os.IsNotExist(err) {
			t.Error("gc --delete left the unused layer")
		}
		// The thin images still run: gc kept every layer they use.
		if got := d.Run(t, "e2e/thin-daemon"); got != "new\n" {
			t.Errorf("after gc the thin image printed %q", got)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		tests := []struct {
			name string
			args []string
			says string
		}{
			{"image not in the daemon", []string{"make-thin", "-i", "e2e/none:latest", "-o", "e2e/x"}, "is not in the docker daemon"},
			{"image not in the registry", []string{"make-thin", "-i", "docker://" + reg.Host + "/e2e/none:v1", "-o", "e2e/x"}, "is not in registry"},
			{"archive missing", []string{"make-thin", "-i", "docker-archive:/nonexistent.tar", "-o", "e2e/x"}, "nonexistent.tar"},
			{"check of a regular image", []string{"check", sourceRef}, "not a thin image"},
			{"unwritable repository", []string{"make-thin", "-i", sourceRef, "-o", "e2e/x", "-r", thinRepo, "--cvmfs-root", "/proc/sys"}, "/proc/sys/" + thinRepo},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				args := tt.args
				if args[0] == "make-thin" && !slices.Contains(args, "--cvmfs-root") {
					args = append(args, repoArgs...)
				}
				res := docker2cvmfs(t, d, args...)
				if res.exitCode != 1 || !strings.Contains(res.stderr, tt.says) {
					t.Errorf("want exit 1 and an error saying %q: %s", tt.says, res)
				}
			})
		}

		t.Run("registry refuses the credentials", func(t *testing.T) {
			config := t.TempDir()
			auth := base64.StdEncoding.EncodeToString([]byte(reg.User + ":wrong"))
			data := `{"auths":{"` + reg.Host + `":{"auth":"` + auth + `"}}}`
			if err := os.WriteFile(filepath.Join(config, "config.json"), []byte(data), 0o600); err != nil {
				t.Fatal(err)
			}
			res := docker2cvmfsEnv(t, d, config, append([]string{"make-thin", "-i", "docker://" + pushed, "-o", "e2e/x"}, repoArgs...)...)
			if res.exitCode != 1 || !strings.Contains(res.stderr, reg.Host) {
				t.Errorf("want exit 1 and an error naming the registry: %s", res)
			}
		})
	})
}
