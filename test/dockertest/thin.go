package dockertest

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// ThinDescriptorName is the file a thin image's only layer holds.
const ThinDescriptorName = "thin.json"

// ThinLayer is one entry of a thin image descriptor's layer list.
type ThinLayer struct {
	Digest string `json:"digest"`
	URL    string `json:"url"`
}

// Descriptor is a thin image descriptor, with the fields in the order the
// tools that make thin images write them.
type Descriptor struct {
	Version    string      `json:"version"`
	MinVersion string      `json:"min_version"`
	Origin     string      `json:"origin"`
	Layers     []ThinLayer `json:"layers"`
	Comment    string      `json:"comment"`
}

// NewDescriptor returns a version 1.0 descriptor listing layers, base first.
func NewDescriptor(layers ...ThinLayer) Descriptor {
	return Descriptor{Version: "1.0", Origin: "e2e", Layers: layers}
}

// JSON returns the descriptor as thin.json holds it.
func (d Descriptor) JSON() []byte {
	b, err := json.Marshal(d)
	if err != nil {
		panic(fmt.Sprintf("descriptor does not marshal: %v", err)) // only strings and slices
	}
	return b
}

// PublishLayer writes the layer into the CernVM-FS root as a directory at
// <cvmfsRoot>/<repo>/layers/<digest>, with whiteouts in the given format,
// as a publisher would, and returns its descriptor entry. The digest is the
// sha256 of the layer's tar, as a real layer's uncompressed diff ID is.
func PublishLayer(cvmfsRoot, repo string, l Layer, format WhiteoutFormat) (ThinLayer, error) {
	h := sha256.New()
	if err := l.WriteTar(h); err != nil {
		return ThinLayer{}, err
	}
	digest := hex.EncodeToString(h.Sum(nil))

	rel := "layers/" + digest
	if err := l.WriteDir(filepath.Join(cvmfsRoot, repo, filepath.FromSlash(rel)), format); err != nil {
		return ThinLayer{}, err
	}
	return ThinLayer{Digest: digest, URL: "cvmfs://" + repo + "/" + rel}, nil
}

// LayerDir returns where a layer URL of the form cvmfs://<repo>/<path>
// points under cvmfsRoot, for tests that break a layer on purpose.
func LayerDir(cvmfsRoot, repo string, tl ThinLayer) string {
	return filepath.Join(cvmfsRoot, repo, "layers", tl.Digest)
}

// WriteThinTar writes a layer tar holding thin.json alone, with content as
// its bytes (a descriptor, or something broken on purpose), into a new file
// at p. Importing it makes a thin image.
func WriteThinTar(p string, content []byte) (retErr error) {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("failed to create thin layer tar: %w", err)
	}
	defer func() {
		if err := f.Close(); err != nil && retErr == nil {
			retErr = fmt.Errorf("failed to write thin layer tar %s: %w", p, err)
		}
	}()

	tw := tar.NewWriter(f)
	hdr := &tar.Header{
		Name:     ThinDescriptorName,
		Typeflag: tar.TypeReg,
		Mode:     0o644,
		Size:     int64(len(content)),
		ModTime:  fixtureTime,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("failed to write thin layer tar %s: %w", p, err)
	}
	if _, err := tw.Write(content); err != nil {
		return fmt.Errorf("failed to write thin layer tar %s: %w", p, err)
	}
	return tw.Close()
}
