package overlay2

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/go-archive"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/graphdriver"
)

// The naive diff compares a layer's full tree with its parent's, file by
// file. It is slower than reading the upper directory, and used only when
// the upper directory is not a faithful diff (see checkDiffOptions) or when
// dockerd asks for a diff against another layer than the parent.

// naiveChanges mounts layer id and the parent tree and compares them. The
// returned release function unmounts both; dir is the layer's tree, valid
// until release.
func (d *Driver) naiveChanges(id, parent string) (changes []archive.Change, dir string, release func(), retErr error) {
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
		pdir, prelease, err := d.parentView(parent)
		if err != nil {
			return nil, "", nil, err
		}
		releases = append(releases, prelease)
		parentDir = pdir
	}
	changes, err = archive.ChangesDirs(dir, parentDir)
	if err != nil {
		return nil, "", nil, fmt.Errorf("failed to compare layer %s with %s: %w", id, parent, err)
	}
	return changes, dir, release, nil
}

// parentView returns a directory showing the full tree of layer id as a
// layer above it sees it. For a thin layer that is its repository layers,
// not its own directory, so it gets a read-only overlay of them.
func (d *Driver) parentView(id string) (string, func(), error) {
	if !d.isThin(id) {
		dir, err := d.Get(id, "")
		if err != nil {
			return "", nil, err
		}
		return dir, func() { d.Put(id) }, nil
	}

	rec, err := d.readThin(id)
	if err != nil {
		return "", nil, err
	}
	tmp, err := os.MkdirTemp(d.home, tempPrefix+"view-")
	if err != nil {
		return "", nil, fmt.Errorf("failed to make a view of thin layer %s: %w", id, err)
	}
	cleanup := func() {
		unmount(filepath.Join(tmp, "merged"))
		os.RemoveAll(tmp)
	}
	if len(rec.Layers) == 0 {
		return tmp, cleanup, nil
	}
	chain, err := d.expandLower([]string{d.linkOf(id)})
	if err != nil {
		cleanup()
		return "", nil, err
	}
	if chain, err = d.prepareThin(id, chain); err != nil {
		cleanup()
		return "", nil, err
	}
	// The empty local directory on top keeps the overlay valid with a
	// single repository layer, and gives it a local file system to take
	// name limits from (a CernVM-FS client reports none).
	lowers := []string{"empty"}
	for _, e := range chain.entries {
		lowers = append(lowers, e.abs)
	}
	for _, sub := range []string{"empty", "merged"} {
		if err := os.Mkdir(filepath.Join(tmp, sub), 0o755); err != nil {
			cleanup()
			return "", nil, fmt.Errorf("failed to make a view of thin layer %s: %w", id, err)
		}
	}
	data := "lowerdir=" + strings.Join(lowers, ":")
	if err := mountOverlay(tmp, filepath.Join(tmp, "merged"), data, true); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("failed to make a view of thin layer %s: %w", id, err)
	}
	return filepath.Join(tmp, "merged"), cleanup, nil
}

// linkOf returns the lower-file entry naming layer id, or "" if unknown.
func (d *Driver) linkOf(id string) string {
	link, err := os.ReadFile(filepath.Join(d.home, id, linkFile))
	if err != nil {
		return ""
	}
	return filepath.Join(linkDir, string(link))
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
