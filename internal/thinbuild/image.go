package thinbuild

import (
	"bytes"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// OriginLabel is the label of a thin image that says which image it was
// made from.
const OriginLabel = "org.cernvm.thin.origin"

// historyCreatedBy is the history entry of the thin layer.
const historyCreatedBy = "docker2cvmfs make-thin"

// Image returns the thin image of a source image whose configuration is
// src: src whole (environment, entry point, command, working directory,
// user, labels, ports, volumes, history and the rest), plus OriginLabel set
// to origin, with the thin layer holding thinJSON as its only layer.
//
// The source's history is kept with every entry marked as making no layer,
// since its layers are now in the repository, and one entry is added for
// the thin layer: Docker refuses an image with more history entries that
// make layers than it has layers.
func Image(src *v1.ConfigFile, thinJSON []byte, origin string) (v1.Image, error) {
	layerTar, err := LayerTar(thinJSON)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return nil, fmt.Errorf("failed to make thin layer: %w", err)
	}

	cfg := src.DeepCopy()
	labels := make(map[string]string, len(cfg.Config.Labels)+1)
	for k, v := range cfg.Config.Labels {
		labels[k] = v
	}
	labels[OriginLabel] = origin
	cfg.Config.Labels = labels
	for i := range cfg.History {
		cfg.History[i].EmptyLayer = true
	}
	cfg.RootFS = v1.RootFS{Type: "layers"}

	img, err := mutate.ConfigFile(empty.Image, cfg)
	if err != nil {
		return nil, fmt.Errorf("failed to make thin image configuration: %w", err)
	}
	img, err = mutate.Append(img, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   cfg.Created,
			CreatedBy: historyCreatedBy,
			Comment:   fmt.Sprintf("thin.json, %d bytes", len(thinJSON)),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("failed to add thin layer: %w", err)
	}
	return img, nil
}
