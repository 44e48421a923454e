package dockertest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// DriverIDs returns the ids dockerd gave the storage driver for every layer
// it knows now: the cache id of each image layer and the mount and init ids
// of each container, read from dockerd's layer database.
func (d *Daemon) DriverIDs(t *testing.T) []string {
	t.Helper()

	layerdb := filepath.Join(d.DataRoot, "image", d.Driver, "layerdb")
	var ids []string
	for _, pattern := range []string{"sha256/*/cache-id", "mounts/*/mount-id", "mounts/*/init-id"} {
		files, err := filepath.Glob(filepath.Join(layerdb, pattern))
		if err != nil {
			t.Fatalf("failed to list the layer database: %v", err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatalf("failed to read the layer database: %v", err)
			}
			if id := strings.TrimSpace(string(b)); id != "" {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// TreeEntry describes one path below a directory: "dir", "file" or
// "symlink -> <target>".
type TreeEntry string

// Tree returns every path below root, relative to it, without following
// symlinks.
func Tree(root string) (map[string]TreeEntry, error) {
	tree := make(map[string]TreeEntry)
	err := filepath.WalkDir(root, func(p string, de os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		switch {
		case de.IsDir():
			tree[rel] = "dir"
		case de.Type()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			tree[rel] = TreeEntry("symlink -> " + target)
		default:
			tree[rel] = TreeEntry(fmt.Sprintf("file (%s)", de.Type()))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("failed to walk %s: %w", root, err)
	}
	return tree, nil
}
