package aufs

import (
	"fmt"
	"io"

	"github.com/moby/go-archive"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/graphdriver"
)

// The naive diff compares a layer's full tree with another layer's, file by
// file. dockerd asks for it only when it diffs a layer against another
// layer than its parent; the diff directory answers every other case.

// naiveChanges mounts layer id and layer parent and compares their trees.
// The returned release function unmounts both; dir is the layer's tree,
// valid until release. A thin layer shows its descriptor when mounted, not
// its image, so comparing with one that is not the direct parent is
// refused.
func (d *Driver) naiveChanges(id, parent string) (changes []archive.Change, dir string, release func(), retErr error) {
	if parent != "" && d.isThin(parent) {
		return nil, "", nil, fmt.Errorf("cannot compare layer %s with thin layer %s, which is not its parent: the %s backend compares a layer with a thin layer only when that is its parent",
			id, parent, Name)
	}
	dir, err := d.Get(id, "")
	if err != nil {
		return nil, "", nil, err
	}
	releases := []func(){func() { d.Put(id) }}
	release = func() {
		for i := len(releases) - 1; i >= 0; i-- {
			releases[i]()
		}
	}
	defer func() {
		if retErr != nil {
			release()
		}
	}()

	parentDir := ""
	if parent != "" {
		if parentDir, err = d.Get(parent, ""); err != nil {
			return nil, "", nil, err
		}
		releases = append(releases, func() { d.Put(parent) })
	}
	changes, err = archive.ChangesDirs(dir, parentDir)
	if err != nil {
		return nil, "", nil, fmt.Errorf("failed to compare layer %s with %s: %w", id, parent, err)
	}
	return changes, dir, release, nil
}

// naiveDiff streams the tar of the naive changes of layer id.
func (d *Driver) naiveDiff(id, parent string) (io.ReadCloser, error) {
	changes, dir, release, err := d.naiveChanges(id, parent)
	if err != nil {
		return nil, err
	}
	rc, err := archive.ExportChanges(dir, changes, d.idMap)
	if err != nil {
		release()
		return nil, fmt.Errorf("failed to export changes of layer %s: %w", id, err)
	}
	return &releasingReader{ReadCloser: rc, release: release}, nil
}

// releasingReader runs release once the stream is closed.
type releasingReader struct {
	io.ReadCloser
	release func()
}

func (r *releasingReader) Close() error {
	err := r.ReadCloser.Close()
	r.release()
	return err
}

// convertChanges turns archive changes into the protocol's.
func convertChanges(in []archive.Change) []graphdriver.Change {
	out := make([]graphdriver.Change, 0, len(in))
	for _, c := range in {
		var kind graphdriver.ChangeKind
		switch c.Kind {
		case archive.ChangeAdd:
			kind = graphdriver.ChangeAdd
		case archive.ChangeDelete:
			kind = graphdriver.ChangeDelete
		default:
			kind = graphdriver.ChangeModify
		}
		out = append(out, graphdriver.Change{Path: c.Path, Kind: kind})
	}
	return out
}
