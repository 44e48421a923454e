package source

import (
	"errors"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ErrNotFound is matched, through errors.Is, by the error of an image that
// does not exist where its reference points.
var ErrNotFound = errors.New("image not found")

// Image is a source image.
type Image struct {
	// Config is the image's configuration, whole.
	Config *v1.ConfigFile
	// Layers are the image's layers, base first, in the order of
	// Config.RootFS.DiffIDs.
	Layers []Layer
	// Origin says where the image came from, for the descriptor and the
	// thin image's label.
	Origin string

	close func() error
}

// Close releases what reading the image holds: open files, and the
// temporary copy of an image streamed out of the daemon.
func (img *Image) Close() error {
	if img.close == nil {
		return nil
	}
	return img.close()
}

// Layer is one layer of a source image.
type Layer struct {
	// DiffID is the sha256 of the uncompressed layer tar.
	DiffID v1.Hash
	// Size is the length of the stream Open returns, as stored, or -1 when
	// it is not known.
	Size int64

	open func() (io.ReadCloser, error)
}

// Open returns the layer as stored: a tar, or a compressed tar.
func (l Layer) Open() (io.ReadCloser, error) {
	rc, err := l.open()
	if err != nil {
		return nil, fmt.Errorf("failed to open layer %s: %w", l.DiffID, err)
	}
	return rc, nil
}

// newImage checks that the configuration lists as many layers as the
// manifest and returns the image.
func newImage(cfg *v1.ConfigFile, layers []Layer, origin string, closeFn func() error) (*Image, error) {
	if cfg == nil {
		return nil, errors.New("image has no configuration")
	}
	if n := len(cfg.RootFS.DiffIDs); n != len(layers) {
		return nil, fmt.Errorf("image configuration lists %d layers and its manifest %d", n, len(layers))
	}
	return &Image{Config: cfg, Layers: layers, Origin: origin, close: closeFn}, nil
}

// NewLayer returns a layer read by open, which returns the layer as stored;
// size is the length of that stream, or -1.
func NewLayer(diffID v1.Hash, size int64, open func() (io.ReadCloser, error)) Layer {
	return Layer{DiffID: diffID, Size: size, open: open}
}
