package graphtest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Apply creates the entries below dir, which must exist, as a repository
// layer directory holds them: Whiteout and Opaque become plain marker files,
// as `cvmfs_server ingest` leaves them, and a CharDevice with an Xattr of
// trusted.overlay.opaque makes a layer in the overlay format. Directories
// that already exist are kept and take the declared metadata. Apply needs
// root for owners, device nodes and trusted attributes.
func Apply(dir string, entries ...Entry) error {
	t, err := buildTree(entries)
	if err != nil {
		return err
	}

	for _, p := range t.order {
		n := t.nodes[p]
		full := filepath.Join(dir, filepath.FromSlash(p))
		var err error
		switch n.typ {
		case typeDir:
			err = os.Mkdir(full, 0o700)
			if errors.Is(err, fs.ErrExist) {
				if info, serr := os.Lstat(full); serr == nil && info.IsDir() {
					err = nil
				}
			}
		case typeFile:
			err = os.WriteFile(full, []byte(n.content), 0o600)
		case typeSymlink:
			err = os.Symlink(n.target, full)
		case typeHardlink:
			err = os.Link(filepath.Join(dir, filepath.FromSlash(n.target)), full)
		case typeCharDevice:
			err = unix.Mknod(full, unix.S_IFCHR, int(unix.Mkdev(n.major, n.minor)))
		}
		if err != nil {
			return fmt.Errorf("failed to create %s: %w", full, err)
		}
	}

	// Owners before modes, because chown clears the set-id bits.
	for _, p := range t.order {
		n := t.nodes[p]
		if n.typ == typeHardlink {
			continue
		}
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.Lchown(full, n.uid, n.gid); err != nil {
			return fmt.Errorf("failed to set the owner of %s: %w", full, err)
		}
		if n.typ != typeSymlink {
			if err := unix.Chmod(full, n.mode); err != nil {
				return fmt.Errorf("failed to set the mode of %s: %w", full, err)
			}
		}
		for name, value := range n.xattrs {
			if err := unix.Lsetxattr(full, name, []byte(value), 0); err != nil {
				return fmt.Errorf("failed to set xattr %s on %s: %w", name, full, err)
			}
		}
	}
	return nil
}
