package thinbuild

import (
	"fmt"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/repository"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/source"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/unpack"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/thinimage"
)

// Descriptor returns the descriptor of img's layers in repo, base first,
// each named by its diff ID ("sha256:<hex>"), found at
// cvmfs://<repo>/<subdirectory>/<hex> and declared to record deletions in
// format, and its bytes as thin.json holds them.
func Descriptor(img *source.Image, repo repository.Repo, format unpack.WhiteoutFormat) (*thinimage.Descriptor, []byte, error) {
	d := &thinimage.Descriptor{
		Version: thinimage.WriterVersion,
		Origin:  img.Origin,
		Layers:  make([]thinimage.Layer, 0, len(img.Layers)),
	}
	for i, l := range img.Layers {
		entry, err := repo.LayerEntry(l.DiffID)
		if err != nil {
			return nil, nil, fmt.Errorf("layer %d: %w", i+1, err)
		}
		entry.Whiteouts = declared(format)
		d.Layers = append(d.Layers, entry)
	}
	data, err := d.Marshal()
	if err != nil {
		return nil, nil, fmt.Errorf("failed to write descriptor: %w", err)
	}
	return d, data, nil
}

// declared returns how a descriptor declares format; "" declares nothing.
func declared(format unpack.WhiteoutFormat) string {
	switch format {
	case unpack.Overlay:
		return thinimage.WhiteoutsOverlay
	case unpack.AUFS:
		return thinimage.WhiteoutsAUFS
	default:
		return ""
	}
}
