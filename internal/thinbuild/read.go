package thinbuild

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/moby/go-archive/compression"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/source"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/thinimage"
)

// ErrNotThin is matched, through errors.Is, by the error of an image that is
// not a thin image.
var ErrNotThin = errors.New("not a thin image")

// ReadDescriptor returns the descriptor of a thin image, parsed, and its
// bytes. A thin image has one layer, holding thin.json at its root.
func ReadDescriptor(img *source.Image) (*thinimage.Descriptor, []byte, error) {
	if len(img.Layers) != 1 {
		return nil, nil, fmt.Errorf("image has %d layers, a thin image has one: %w", len(img.Layers), ErrNotThin)
	}
	rc, err := img.Layers[0].Open()
	if err != nil {
		return nil, nil, err
	}
	defer rc.Close()
	plain, err := compression.DecompressStream(rc)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to decompress the thin layer: %w", err)
	}
	defer plain.Close()

	tr := tar.NewReader(plain)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, nil, fmt.Errorf("its layer holds no %s: %w", thinimage.DescriptorName, ErrNotThin)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("failed to read the thin layer: %w", err)
		}
		if path.Clean(strings.TrimLeft(hdr.Name, "/")) != thinimage.DescriptorName || hdr.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(io.LimitReader(tr, thinimage.MaxDescriptorSize+1))
		if err != nil {
			return nil, nil, fmt.Errorf("failed to read %s: %w", thinimage.DescriptorName, err)
		}
		if len(data) > thinimage.MaxDescriptorSize {
			return nil, nil, fmt.Errorf("%s is larger than %d bytes", thinimage.DescriptorName, thinimage.MaxDescriptorSize)
		}
		d, err := thinimage.Parse(data)
		if err != nil {
			return nil, nil, err
		}
		return d, data, nil
	}
}
