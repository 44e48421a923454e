package thinbuild

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/repository"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/source"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/unpack"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/thinimage"
)

func hash(s string) v1.Hash {
	sum := sha256.Sum256([]byte(s))
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

// sourceConfig is a configuration with every field a thin image must keep.
func sourceConfig() *v1.ConfigFile {
	created := v1.Time{Time: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}
	return &v1.ConfigFile{
		Architecture: "amd64",
		OS:           "linux",
		Created:      created,
		Author:       "someone",
		Config: v1.Config{
			Env:          []string{"PATH=/usr/bin:/bin", "APP=1"},
			Entrypoint:   []string{"/entry.sh"},
			Cmd:          []string{"run", "--fast"},
			WorkingDir:   "/srv",
			User:         "1000:1000",
			Labels:       map[string]string{"maintainer": "me"},
			ExposedPorts: map[string]struct{}{"8080/tcp": {}},
			Volumes:      map[string]struct{}{"/data": {}},
			StopSignal:   "SIGINT",
		},
		History: []v1.History{
			{Created: created, CreatedBy: "ADD rootfs"},
			{Created: created, CreatedBy: "ENV APP=1", EmptyLayer: true},
			{Created: created, CreatedBy: "RUN make"},
		},
		RootFS: v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{hash("a"), hash("b")}},
	}
}

func testDescriptor(t *testing.T) []byte {
	t.Helper()
	repo, err := repository.New("/cvmfs", "unpacked.example.org", "layers/")
	if err != nil {
		t.Fatal(err)
	}
	img := &source.Image{Config: sourceConfig(), Origin: "e2e/img:v1@http://127.0.0.1:5000/v2"}
	for _, h := range sourceConfig().RootFS.DiffIDs {
		img.Layers = append(img.Layers, source.NewLayer(h, -1, nil))
	}
	d, data, err := Descriptor(img, repo, unpack.Overlay)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Layers) != 2 || d.Layers[0].Digest != "sha256:"+hash("a").Hex ||
		d.Layers[1].URL != "cvmfs://unpacked.example.org/layers/"+hash("b").Hex {
		t.Fatalf("descriptor layers %+v", d.Layers)
	}
	parsed, err := thinimage.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range parsed.Layers {
		if !l.HasNoAUFSMarkers() {
			t.Errorf("layer %d of %s does not declare the overlay format it was unpacked in", i, data)
		}
	}
	return data
}

func TestDescriptorDeclaresFormat(t *testing.T) {
	repo, err := repository.New("/cvmfs", "unpacked.example.org", "layers/")
	if err != nil {
		t.Fatal(err)
	}
	img := &source.Image{Config: sourceConfig()}
	for _, h := range sourceConfig().RootFS.DiffIDs {
		img.Layers = append(img.Layers, source.NewLayer(h, -1, nil))
	}
	for format, want := range map[unpack.WhiteoutFormat]string{
		unpack.Overlay: thinimage.WhiteoutsOverlay,
		unpack.AUFS:    thinimage.WhiteoutsAUFS,
	} {
		_, data, err := Descriptor(img, repo, format)
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := thinimage.Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		for i, l := range parsed.Layers {
			if l.Whiteouts != want {
				t.Errorf("unpacked in %s, layer %d declares whiteouts %q, want %q", format, i, l.Whiteouts, want)
			}
		}
	}
}

func TestLayerTarIsReproducible(t *testing.T) {
	data := testDescriptor(t)
	a, err := LayerTar(data)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := LayerTar(append([]byte(nil), data...))
	if !bytes.Equal(a, b) {
		t.Fatal("two thin layers of one descriptor differ")
	}

	tr := tar.NewReader(bytes.NewReader(a))
	hdr, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	if hdr.Name != "thin.json" || hdr.Mode != 0o644 || hdr.Uid != 0 || hdr.Gid != 0 ||
		!hdr.ModTime.Equal(time.Unix(0, 0)) || hdr.Uname != "" || hdr.Gname != "" {
		t.Errorf("thin.json header %+v", hdr)
	}
	content, _ := io.ReadAll(tr)
	if !bytes.Equal(content, data) {
		t.Error("thin.json content differs from the descriptor")
	}
	if _, err := tr.Next(); err != io.EOF {
		t.Errorf("thin layer holds more than thin.json: %v", err)
	}
}

func TestImageKeepsConfiguration(t *testing.T) {
	data := testDescriptor(t)
	src := sourceConfig()
	img, err := Image(src, data, "e2e/img:v1@http://127.0.0.1:5000/v2")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}

	c, s := cfg.Config, src.Config
	checks := []struct {
		field     string
		got, want any
	}{
		{"Env", strings.Join(c.Env, ","), strings.Join(s.Env, ",")},
		{"Entrypoint", strings.Join(c.Entrypoint, ","), strings.Join(s.Entrypoint, ",")},
		{"Cmd", strings.Join(c.Cmd, ","), strings.Join(s.Cmd, ",")},
		{"WorkingDir", c.WorkingDir, s.WorkingDir},
		{"User", c.User, s.User},
		{"StopSignal", c.StopSignal, s.StopSignal},
		{"ExposedPorts", len(c.ExposedPorts), 1},
		{"Volumes", len(c.Volumes), 1},
		{"maintainer label", c.Labels["maintainer"], "me"},
		{"origin label", c.Labels[OriginLabel], "e2e/img:v1@http://127.0.0.1:5000/v2"},
		{"Created", cfg.Created.Time, src.Created.Time},
		{"Author", cfg.Author, src.Author},
		{"history length", len(cfg.History), len(src.History) + 1},
		{"source labels untouched", len(src.Config.Labels), 1},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.field, ch.got, ch.want)
		}
	}
	for i, h := range cfg.History[:len(src.History)] {
		if !h.EmptyLayer || h.CreatedBy != src.History[i].CreatedBy {
			t.Errorf("history %d = %+v, want the source's marked as making no layer", i, h)
		}
	}
	if last := cfg.History[len(cfg.History)-1]; last.EmptyLayer {
		t.Error("the thin layer's history entry says it makes no layer")
	}

	layerTar, _ := LayerTar(data)
	sum := sha256.Sum256(layerTar)
	if len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0].Hex != hex.EncodeToString(sum[:]) {
		t.Errorf("diff IDs %v, want the thin layer's sha256 alone", cfg.RootFS.DiffIDs)
	}

	again, _ := Image(sourceConfig(), data, "e2e/img:v1@http://127.0.0.1:5000/v2")
	id1, _ := img.ConfigName()
	id2, _ := again.ConfigName()
	if id1 != id2 {
		t.Errorf("two thin images of one source have IDs %s and %s", id1, id2)
	}
}

func TestReadDescriptor(t *testing.T) {
	data := testDescriptor(t)
	layerTar, _ := LayerTar(data)
	thin := &source.Image{Layers: []source.Layer{source.NewLayer(hash("x"), -1, func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})}}
	_, got, err := ReadDescriptor(thin)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ReadDescriptor = %q, %v", got, err)
	}

	regular := &source.Image{Layers: []source.Layer{{}, {}}}
	if _, _, err := ReadDescriptor(regular); err == nil {
		t.Error("ReadDescriptor of a two-layer image succeeded")
	}
}
