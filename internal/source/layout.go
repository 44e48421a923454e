package source

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/imageref"
)

// RefNameAnnotation is the annotation of an OCI layout's index that names an
// image, its tag.
const RefNameAnnotation = "org.opencontainers.image.ref.name"

// openLayout opens an image of an OCI image layout: the one whose index
// entry is annotated with the reference's tag, or the only one when no tag
// is given. An entry that is itself an index gives the image of the
// platform docker2cvmfs runs on.
func openLayout(ref imageref.Reference) (*Image, error) {
	idx, err := layout.ImageIndexFromPath(ref.Path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("failed to open OCI layout %s: %w: %w", ref.Path, ErrNotFound, err)
		}
		return nil, fmt.Errorf("failed to open OCI layout %s: %w", ref.Path, err)
	}
	manifest, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("failed to read the index of OCI layout %s: %w", ref.Path, err)
	}

	desc, err := pickLayoutEntry(manifest.Manifests, ref.Name)
	if err != nil {
		return nil, fmt.Errorf("OCI layout %s: %w", ref.Path, err)
	}

	var img v1.Image
	if desc.MediaType.IsIndex() {
		child, err := idx.ImageIndex(desc.Digest)
		if err != nil {
			return nil, fmt.Errorf("OCI layout %s: %w", ref.Path, err)
		}
		img, err = platformImage(child)
		if err != nil {
			return nil, fmt.Errorf("OCI layout %s: %w", ref.Path, err)
		}
	} else if img, err = idx.Image(desc.Digest); err != nil {
		return nil, fmt.Errorf("OCI layout %s: failed to open image %s: %w", ref.Path, desc.Digest, err)
	}

	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("OCI layout %s: failed to read configuration: %w", ref.Path, err)
	}
	stored, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("OCI layout %s: failed to read manifest: %w", ref.Path, err)
	}
	layers := make([]Layer, 0, len(stored))
	for i, l := range stored {
		if i >= len(cfg.RootFS.DiffIDs) {
			break
		}
		size, err := l.Size()
		if err != nil {
			return nil, fmt.Errorf("OCI layout %s: layer %d: %w", ref.Path, i+1, err)
		}
		l := l
		layers = append(layers, Layer{
			DiffID: cfg.RootFS.DiffIDs[i],
			Size:   size,
			// A layout's layer is its blob, read as stored.
			open: func() (io.ReadCloser, error) { return l.Compressed() },
		})
	}
	if len(layers) != len(stored) {
		return nil, fmt.Errorf("OCI layout %s: configuration lists %d layers and the manifest %d", ref.Path, len(cfg.RootFS.DiffIDs), len(stored))
	}
	origin := string(imageref.Layout) + ":" + absPath(ref.Path) + suffix(ref.Name)
	return newImage(cfg, layers, origin, nil)
}

// pickLayoutEntry returns the index entry tagged tag, or the only entry.
func pickLayoutEntry(entries []v1.Descriptor, tag string) (v1.Descriptor, error) {
	if tag == "" {
		if len(entries) != 1 {
			return v1.Descriptor{}, fmt.Errorf("layout holds %d images: name one (oci:PATH:TAG)", len(entries))
		}
		return entries[0], nil
	}
	var tags []string
	for _, d := range entries {
		if got := d.Annotations[RefNameAnnotation]; got != "" {
			if got == tag {
				return d, nil
			}
			tags = append(tags, got)
		}
	}
	return v1.Descriptor{}, fmt.Errorf("no image tagged %q among [%s]: %w", tag, strings.Join(tags, ", "), ErrNotFound)
}

// platformImage returns the image of an index for this machine's platform.
func platformImage(idx v1.ImageIndex) (v1.Image, error) {
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, d := range m.Manifests {
		if d.Platform != nil && d.Platform.OS == "linux" && d.Platform.Architecture == runtime.GOARCH && d.MediaType.IsImage() {
			return idx.Image(d.Digest)
		}
	}
	return nil, fmt.Errorf("no image for linux/%s in the index: %w", runtime.GOARCH, ErrNotFound)
}
