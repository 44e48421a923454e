package dockertest

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
)

// registryBlobDir is where the distribution registry's filesystem storage
// keeps blobs, below its root directory: one file named "data" per blob.
const registryBlobDir = "docker/registry/v2/blobs"

// RegistryBlobBytes returns the bytes the registry stores in blobs
// (layers, image configurations, manifests): what pushes cost it.
func RegistryBlobBytes(r *Registry) (int64, error) {
	root := filepath.Join(r.Dir, "data", registryBlobDir)
	var total int64
	err := filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == root {
			return filepath.SkipDir // nothing pushed yet
		}
		if err != nil {
			return err
		}
		if de.Type().IsRegular() && de.Name() == "data" {
			info, err := de.Info()
			if err != nil {
				return err
			}
			total += info.Size()
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("failed to measure the registry's blobs: %w", err)
	}
	return total, nil
}
