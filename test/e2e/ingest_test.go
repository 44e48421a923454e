package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/test/dockertest"
)

// ingestDockerfile builds a regular image on the busybox base whose layers,
// as `docker save` writes them, hold every kind of entry and every kind of
// deletion a real image's layers hold. The base has no chmod or chown
// applet, so those run through busybox itself.
const ingestDockerfile = `FROM ` + baseRef + `
RUN mkdir -p /app/bin /app/etc /app/data /app/tree/a/b/c /app/tree/x/y /app/gone/sub /app/replace/sub \
 && echo secret > /app/secret && busybox chmod 0600 /app/secret \
 && mkdir /app/private && echo p > /app/private/p && busybox chmod 0700 /app/private \
 && echo '#!/bin/sh' > /app/bin/tool && busybox chmod 0755 /app/bin/tool \
 && echo suid > /app/bin/suid && busybox chmod 04755 /app/bin/suid \
 && mkdir /app/shared && busybox chmod 03775 /app/shared \
 && echo owned > /app/data/owned && busybox chown 1000:2000 /app/data/owned \
 && echo conf > /app/etc/conf \
 && ln -s ../etc/conf /app/bin/conf-rel && ln -s /app/etc/conf /app/bin/conf-abs \
 && ln -s /nowhere /app/bin/dangling \
 && echo linked > /app/data/orig && ln /app/data/orig /app/data/hard \
 && echo deep > /app/tree/a/b/c/deep && echo keep > /app/tree/a/b/keep \
 && echo y > /app/tree/x/y/file && echo x > /app/tree/x/keep \
 && echo f > /app/gone/f && echo g > /app/gone/sub/g \
 && echo old > /app/replace/old && echo s > /app/replace/sub/s \
 && echo once > /app/data/recreated && echo bye > /app/data/deleted \
 && echo file > /app/data/kind
RUN rm /app/data/deleted /app/data/recreated \
 && rm -rf /app/gone \
 && rm -rf /app/replace && mkdir /app/replace && echo x > /app/replace/f \
 && rm /app/tree/a/b/c/deep && rm -rf /app/tree/x/y
RUN echo again > /app/data/recreated \
 && mkdir /app/gone && echo new > /app/gone/new \
 && rm /app/data/kind && mkdir /app/data/kind && echo in > /app/data/kind/in \
 && echo y2 > /app/replace/g && rm /app/replace/f \
 && busybox chmod 0750 /app/bin/tool
`

// wantIngestMarkers are AUFS markers the layer tars of ingestDockerfile must
// hold, so that the thin image's layers carry them as plain files: the
// whiteouts of a file, of a directory, of nested entries and of a file of
// an opaque directory, and the opaque markers of replaced directories.
var wantIngestMarkers = []string{
	"app/data/.wh.deleted",
	"app/data/.wh.recreated",
	"app/.wh.gone",
	"app/tree/a/b/c/.wh.deep",
	"app/tree/x/.wh.y",
	"app/replace/.wh..wh..opq",
	"app/replace/.wh.f",
}

// wantInSource and wantNotInSource hold the source image to what
// ingestDockerfile did, so that the comparison below does not pass on an
// image that both runs get wrong in the same way.
var (
	wantInSource = []string{
		"f /app/secret 600 0:0 7 1 ",
		"d /app/private 700 0:0",
		"f /app/bin/tool 750 0:0 10 1 ",
		"f /app/bin/suid 4755 0:0 5 1 ",
		"d /app/shared 3775 0:0",
		"f /app/data/owned 644 1000:2000 6 1 ",
		"l /app/bin/conf-rel 777 0:0 -> ../etc/conf",
		"l /app/bin/conf-abs 777 0:0 -> /app/etc/conf",
		"l /app/bin/dangling 777 0:0 -> /nowhere",
		"f /app/data/orig 644 0:0 7 2 ",
		"f /app/data/hard 644 0:0 7 2 ",
		"f /app/data/recreated 644 0:0 6 1 ",
		"d /app/gone 755 0:0",
		"f /app/gone/new 644 0:0 4 1 ",
		"d /app/data/kind 755 0:0",
		"f /app/data/kind/in 644 0:0 3 1 ",
		"f /app/replace/g 644 0:0 3 1 ",
		"f /app/tree/a/b/keep 644 0:0 5 1 ",
		"d /app/tree/a/b/c 755 0:0",
		"f /app/tree/x/keep 644 0:0 2 1 ",
	}
	wantNotInSource = []string{
		"/app/data/deleted", "/app/gone/f", "/app/gone/sub", "/app/replace/old",
		"/app/replace/sub", "/app/replace/f", "/app/tree/a/b/c/deep", "/app/tree/x/y",
	}
)

// TestThinImageFromIngestedLayers builds a regular image of several layers
// with a Dockerfile, saves it, and unpacks each of its layer tars into the
// CernVM-FS root as `cvmfs_server ingest` does, whiteouts and opaque markers
// kept as plain files. A thin image listing those layers must show, inside
// a container, exactly the file tree of the image it was made from.
func TestThinImageFromIngestedLayers(t *testing.T) {
	cvmfsRoot := newCVMFSRoot(t)
	d := startWithPlugin(t, cvmfsRoot)
	importBase(t, d)

	const sourceRef = "e2e/ingest-source"
	buildDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(buildDir, "Dockerfile"), []byte(ingestDockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	d.MustDocker(t, "build", "--network", "none", "-t", sourceRef, buildDir)

	archive := filepath.Join(t.TempDir(), "source.tar")
	d.MustDocker(t, "save", "-o", archive, sourceRef)
	layerTars, err := dockertest.ArchiveLayers(archive)
	if err != nil {
		t.Fatal(err)
	}
	checkDiffIDs(t, d, sourceRef, layerTars)
	checkMarkers(t, layerTars)

	var entries []dockertest.ThinLayer
	for _, lt := range layerTars {
		tl, err := dockertest.IngestLayer(cvmfsRoot, repo, lt)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, tl)
	}
	const thinIngestRef = "e2e/ingest-thin"
	importThin(t, d, dockertest.NewDescriptor(entries...).JSON(), thinIngestRef)

	source := d.FullListing(t, sourceRef)
	checkSourceListing(t, source)
	thin := d.FullListing(t, thinIngestRef)
	if diff := dockertest.DiffLines(source, thin); diff != "" {
		t.Errorf("files in a container of the thin image differ from its source image "+
			"(- only in the source image, + only in the thin image):\n%s", diff)
	}
	for _, line := range thin {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			t.Errorf("listing of the thin image holds a malformed line %q", line)
			continue
		}
		name := path.Base(fields[1])
		if strings.HasPrefix(name, ".wh.") || name == dockertest.ThinDescriptorName {
			t.Errorf("a container of the thin image shows %s", line)
		}
	}
}

// checkDiffIDs checks that the layer tars of the saved image are, in order,
// the layers dockerd lists for the image: their sha256 is their diff ID,
// which the descriptor names them by.
func checkDiffIDs(t *testing.T, d *dockertest.Daemon, ref string, layerTars [][]byte) {
	t.Helper()

	var diffIDs []string
	out := d.MustDocker(t, "image", "inspect", "--format", "{{json .RootFS.Layers}}", ref)
	if err := json.Unmarshal([]byte(out), &diffIDs); err != nil {
		t.Fatalf("failed to read the layers of %s from %q: %v", ref, out, err)
	}
	var got []string
	for _, lt := range layerTars {
		sum := sha256.Sum256(lt)
		got = append(got, "sha256:"+hex.EncodeToString(sum[:]))
	}
	if !slices.Equal(got, diffIDs) {
		t.Fatalf("docker save of %s holds layers %q, want its diff IDs %q", ref, got, diffIDs)
	}
	// The base, one layer per RUN step.
	if want := 1 + strings.Count(ingestDockerfile, "\nRUN "); len(diffIDs) != want {
		t.Fatalf("%s has %d layers, want %d", ref, len(diffIDs), want)
	}
}

// checkMarkers checks that the layer tars hold the AUFS markers the test is
// meant to exercise.
func checkMarkers(t *testing.T, layerTars [][]byte) {
	t.Helper()

	var names []string
	for i, lt := range layerTars {
		n, _, err := dockertest.TarNames(bytes.NewReader(lt), "")
		if err != nil {
			t.Fatalf("layer %d: %v", i, err)
		}
		names = append(names, n...)
	}
	var markers []string
	for _, n := range names {
		if strings.HasPrefix(path.Base(n), ".wh.") {
			markers = append(markers, n)
		}
	}
	t.Logf("AUFS markers in the layer tars: %s", strings.Join(markers, " "))
	for _, want := range wantIngestMarkers {
		if !slices.Contains(markers, want) {
			t.Errorf("the layer tars hold no %s, so the test does not exercise it; markers: %q", want, markers)
		}
	}
}

// checkSourceListing checks the listing of the source image against what its
// Dockerfile made.
func checkSourceListing(t *testing.T, lines []string) {
	t.Helper()

	for _, want := range wantInSource {
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l+" ", want) }) {
			t.Errorf("the source image lacks %q", strings.TrimSpace(want))
		}
	}
	for _, line := range lines {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		for _, gone := range wantNotInSource {
			if fields[1] == gone || strings.HasPrefix(fields[1], gone+"/") {
				t.Errorf("the source image holds deleted %s", line)
			}
		}
	}
}
