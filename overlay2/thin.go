package overlay2

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/thinimage"
)

// thinRecord is what the driver keeps about a thin layer, in <id>/thin. It
// holds URLs, not paths, so that a changed CernVM-FS root takes effect at
// the next mount.
type thinRecord struct {
	Origin string      `json:"origin,omitempty"` // the descriptor's origin
	Layers []thinLayer `json:"layers"`           // base first, as in the descriptor
}

// thinLayer is one repository layer of a thin image.
type thinLayer struct {
	Index  int    `json:"index"`
	Digest string `json:"digest"`
	URL    string `json:"url"`
	// Link is the short link name below l/ that points at the layer
	// directory, for mounts that use relative paths.
	Link string `json:"link"`
	// NoMarkers is set when the descriptor declares the layer free of
	// AUFS markers, so that it is not walked looking for them.
	NoMarkers bool `json:"no_markers,omitempty"`

	// Repository is the repository the URL names, and Dir the layer
	// directory under the current CernVM-FS root.
	Repository string `json:"-"`
	Dir        string `json:"-"`
}

// lowerEntry is one lower directory of a mount.
type lowerEntry struct {
	rel  string     // relative to home: l/<LINK>
	abs  string     // absolute path of the directory
	thin *thinLayer // set for a thin image's repository layer
	// whiteout marks the local layer that honours the AUFS markers of the
	// repository layer below it.
	whiteout bool
}

// lowerChain is a layer's lower directories, top first, with thin layers
// expanded.
type lowerChain struct {
	entries []lowerEntry
	thinID  string // the thin layer in the chain, if any
}

// repositories returns the CernVM-FS repositories the chain's layers lie
// in, each once, in the order the chain first names them.
func (c lowerChain) repositories() []string {
	var repos []string
	for _, e := range c.entries {
		if e.thin != nil && !slices.Contains(repos, e.thin.Repository) {
			repos = append(repos, e.thin.Repository)
		}
	}
	return repos
}

// detectThin is called after a layer's tar was applied. If the layer holds a
// descriptor, the descriptor is validated and recorded, and short links to
// its layer directories are made. A layer without one is left alone.
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
	defer func() {
		if retErr != nil {
			d.removeLinks(rec)
		}
	}()
	for _, l := range resolved {
		link, err := newLinkID()
		if err != nil {
			return err
		}
		if err := os.Symlink(l.Dir, filepath.Join(d.home, linkDir, link)); err != nil {
			return fmt.Errorf("failed to link thin layer %s: %w", l.URL, err)
		}
		rec.Layers = append(rec.Layers, thinLayer{Index: l.Index, Digest: l.Digest, URL: l.URL, Link: link,
			NoMarkers: desc.Layers[l.Index].HasNoAUFSMarkers()})
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("failed to encode thin record of layer %s: %w", id, err)
	}
	dir, err := d.layerDir(id)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, thinFile), data); err != nil {
		return fmt.Errorf("failed to record thin layer %s: %w", id, err)
	}

	// Honour AUFS markers now if the repository can be read; otherwise the
	// first mount does it.
	chain, err := d.expandLower([]string{d.linkOf(id)})
	if err != nil {
		return err
	}
	if thinimage.Check(resolved) == nil {
		return d.ensureWhiteouts(id, chain)
	}
	return nil
}

// readThin returns the thin record of layer id, with each layer's directory
// resolved under the current CernVM-FS root. It returns an error wrapping
// fs.ErrNotExist for a layer that is not thin.
func (d *Driver) readThin(id string) (*thinRecord, error) {
	dir, err := d.layerDir(id)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(dir, thinFile))
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
	dir, err := d.layerDir(id)
	if err != nil {
		return false
	}
	_, err = os.Lstat(filepath.Join(dir, thinFile))
	return err == nil
}

// removeThinLinks removes the short links of a thin layer's repository
// layers; a regular layer has none.
func (d *Driver) removeThinLinks(id string) error {
	rec, err := d.readThin(id)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return d.removeLinks(*rec)
}

func (d *Driver) removeLinks(rec thinRecord) error {
	for _, l := range rec.Layers {
		if err := os.Remove(filepath.Join(d.home, linkDir, l.Link)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("failed to remove short link of thin layer %s: %w", l.URL, err)
		}
	}
	return nil
}

// expandLower turns the entries of a lower file into the directories a mount
// uses. Following thin-image rule 2, a thin layer in the chain is replaced by
// its repository layers, last listed uppermost, and the chain ends there:
// the thin layer's own directory, holding only the descriptor, is not
// mounted, and nothing below it is either.
func (d *Driver) expandLower(lowers []string) (lowerChain, error) {
	var chain lowerChain
	for _, rel := range lowers {
		if rel == "" {
			continue
		}
		target, err := os.Readlink(filepath.Join(d.home, rel))
		if err != nil {
			return chain, fmt.Errorf("failed to resolve lower layer %s: %w", rel, err)
		}
		// A layer link points at ../<id>/diff.
		id := filepath.Base(filepath.Dir(target))
		if filepath.IsAbs(target) || filepath.Base(target) != diffDirName || validateID(id) != nil {
			return chain, fmt.Errorf("lower layer %s points at %s, which is not a layer of this driver", rel, target)
		}
		if !d.isThin(id) {
			chain.entries = append(chain.entries, lowerEntry{rel: rel, abs: filepath.Join(d.home, id, diffDirName)})
			continue
		}
		rec, err := d.readThin(id)
		if err != nil {
			return chain, err
		}
		chain.thinID = id
		// The kernel refuses a lower directory given twice. A repository
		// layer listed twice is kept where it is uppermost, which shows
		// the same tree: its entries win over everything between.
		seen := make(map[string]bool, len(rec.Layers))
		for i := len(rec.Layers) - 1; i >= 0; i-- {
			l := rec.Layers[i]
			if seen[l.Dir] {
				continue
			}
			seen[l.Dir] = true
			chain.entries = append(chain.entries, lowerEntry{rel: filepath.Join(linkDir, l.Link), abs: l.Dir, thin: &l})
		}
		return d.withWhiteouts(id, chain)
	}
	return chain, nil
}

// prepareThin readies the thin part of a chain for a mount: it checks that
// every repository layer is present (thin-image rule 4), builds the whiteout
// layers their AUFS markers need if that was not possible before, points
// the short links at the directories under the current CernVM-FS root, and
// checks the depth the mount will really have. It returns the chain to
// mount.
func (d *Driver) prepareThin(id string, chain lowerChain) (lowerChain, error) {
	if chain.thinID == "" {
		return chain, nil
	}
	var layers []thinimage.ResolvedLayer
	for _, e := range chain.entries {
		if e.thin != nil {
			layers = append(layers, thinimage.ResolvedLayer{Index: e.thin.Index, Digest: e.thin.Digest, URL: e.thin.URL, Dir: e.abs})
		}
	}
	if err := thinimage.Check(layers); err != nil {
		return chain, fmt.Errorf("cannot mount layer %s, which is based on the thin image in layer %s: %w", id, chain.thinID, err)
	}

	if rec, err := d.readWhiteouts(chain.thinID); err != nil {
		return chain, err
	} else if rec == nil {
		if err := d.lockedEnsureWhiteouts(chain.thinID, chain); err != nil {
			return chain, err
		}
		if chain, err = d.withWhiteouts(chain.thinID, chain); err != nil {
			return chain, err
		}
	}

	for _, e := range chain.entries {
		if e.thin == nil && !e.whiteout {
			continue
		}
		if err := replaceSymlink(e.abs, filepath.Join(d.home, e.rel)); err != nil {
			return chain, fmt.Errorf("failed to link lower layer %s: %w", e.abs, err)
		}
	}
	if len(chain.entries) > maxDepth {
		return chain, d.depthError("mount", id, chain)
	}
	return chain, nil
}

// lockedEnsureWhiteouts builds the whiteout layers of thin layer thinID
// under that layer's lock, so that two containers starting at once build
// them once.
func (d *Driver) lockedEnsureWhiteouts(thinID string, chain lowerChain) error {
	s := d.state(thinID)
	s.mu.Lock()
	defer s.mu.Unlock()
	return d.ensureWhiteouts(thinID, chain)
}

// lowerDirs returns the absolute lower directories of layer id, top first,
// for GetMetadata.
func (d *Driver) lowerDirs(id string) ([]string, error) {
	lowers, err := d.readLower(id)
	if err != nil || len(lowers) == 0 {
		return nil, err
	}
	chain, err := d.expandLower(lowers)
	if err != nil {
		return nil, err
	}
	dirs := make([]string, 0, len(chain.entries))
	for _, e := range chain.entries {
		dirs = append(dirs, e.abs)
	}
	return dirs, nil
}

// readLower returns the entries of layer id's lower file; a base layer has
// none.
func (d *Driver) readLower(id string) ([]string, error) {
	dir, err := d.layerDir(id)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(dir, lowerFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read lower of layer %s: %w", id, err)
	}
	if len(data) == 0 {
		return nil, nil
	}
	return strings.Split(string(data), ":"), nil
}
