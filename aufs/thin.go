package aufs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/thinimage"
)

// Names inside a thin layer's directory, thin/<id>.
const thinRecordName = "layers.json"

// thinRecord is what the driver keeps about a thin layer. It holds URLs, not
// paths, so that a changed CernVM-FS root takes effect at the next mount.
type thinRecord struct {
	Origin string      `json:"origin,omitempty"` // the descriptor's origin
	Layers []thinLayer `json:"layers"`           // base first, as in the descriptor
}

// thinLayer is one repository layer of a thin image.
type thinLayer struct {
	Index  int    `json:"index"`
	Digest string `json:"digest"`
	URL    string `json:"url"`

	// Repository is the repository the URL names, and Dir the layer
	// directory under the current CernVM-FS root.
	Repository string `json:"-"`
	Dir        string `json:"-"`
}

// resolved returns the record's layers in the form package thinimage checks
// and orders.
func (r *thinRecord) resolved() []thinimage.ResolvedLayer {
	out := make([]thinimage.ResolvedLayer, 0, len(r.Layers))
	for _, l := range r.Layers {
		out = append(out, thinimage.ResolvedLayer{Index: l.Index, Digest: l.Digest, URL: l.URL,
			Repository: l.Repository, Dir: l.Dir})
	}
	return out
}

// detectThin is called after a layer's tar was applied. If the layer holds a
// descriptor, the descriptor is validated and recorded; when its repository
// layers can be read already, the branches that honour their overlay
// whiteouts are built too, and a layer with whiteouts aufs cannot honour
// fails the call. A layer without a descriptor is left alone. On failure
// nothing is recorded.
func (d *Driver) detectThin(id, diffDir string) (retErr error) {
	path := filepath.Join(diffDir, thinimage.DescriptorName)
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to inspect %s of layer %s: %w", thinimage.DescriptorName, id, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("thin image layer %s: %s is not a regular file", id, thinimage.DescriptorName)
	}
	desc, err := thinimage.ReadFile(path)
	if err != nil {
		return fmt.Errorf("thin image layer %s: %w", id, err)
	}
	resolved, err := desc.Resolve(d.cvmfsRoot)
	if err != nil {
		return fmt.Errorf("thin image layer %s: %w", id, err)
	}

	rec := thinRecord{Origin: desc.Origin, Layers: make([]thinLayer, 0, len(resolved))}
	for _, l := range resolved {
		rec.Layers = append(rec.Layers, thinLayer{Index: l.Index, Digest: l.Digest, URL: l.URL})
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("failed to encode thin record of layer %s: %w", id, err)
	}
	dir := d.thinDir(id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("failed to record thin layer %s: %w", id, err)
	}
	defer func() {
		if retErr != nil {
			os.RemoveAll(dir)
		}
	}()
	if err := writeFileAtomic(filepath.Join(dir, thinRecordName), data); err != nil {
		return fmt.Errorf("failed to record thin layer %s: %w", id, err)
	}

	// The repository may be mounted later than the image is pulled; the
	// first mount above the thin layer then builds the branches.
	if thinimage.Check(resolved) == nil {
		return d.ensureWhiteouts(id)
	}
	return nil
}

// readThin returns the thin record of layer id, with each layer's directory
// resolved under the current CernVM-FS root. It returns an error wrapping
// fs.ErrNotExist for a layer that is not thin.
func (d *Driver) readThin(id string) (*thinRecord, error) {
	data, err := os.ReadFile(filepath.Join(d.thinDir(id), thinRecordName))
	if err != nil {
		return nil, err
	}
	var rec thinRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("corrupt thin record of layer %s: %w", id, err)
	}
	for i := range rec.Layers {
		loc, err := thinimage.ParseURL(rec.Layers[i].URL)
		if err != nil {
			return nil, fmt.Errorf("thin image layer %s: %w", id, err)
		}
		rec.Layers[i].Repository = loc.Repository
		rec.Layers[i].Dir = loc.Dir(d.cvmfsRoot)
	}
	return &rec, nil
}

// isThin reports whether layer id is a thin layer.
func (d *Driver) isThin(id string) bool {
	_, err := os.Lstat(filepath.Join(d.thinDir(id), thinRecordName))
	return err == nil
}
