package layercheck

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/unpack"
)

// FromDir lists a layer directory without following links.
func FromDir(root string) (Listing, error) {
	got := make(Listing)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		e, err := entryOf(p, fi)
		if err != nil {
			return err
		}
		got[filepath.ToSlash(rel)] = e
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("failed to list layer directory %s: %w", root, err)
	}
	return got, nil
}

// entryOf describes one path.
func entryOf(p string, fi fs.FileInfo) (Entry, error) {
	// fs.FileMode keeps setuid, setgid and sticky apart from the
	// permission bits; listings hold them where a tar header does.
	e := Entry{Perm: fi.Mode().Perm()}
	if fi.Mode()&fs.ModeSetuid != 0 {
		e.Perm |= 0o4000
	}
	if fi.Mode()&fs.ModeSetgid != 0 {
		e.Perm |= 0o2000
	}
	if fi.Mode()&fs.ModeSticky != 0 {
		e.Perm |= 0o1000
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		e.UID, e.GID = int(st.Uid), int(st.Gid)
		e.Major, e.Minor = unix.Major(st.Rdev), unix.Minor(st.Rdev)
	}

	switch m := fi.Mode(); {
	case m.IsRegular():
		e.Type, e.Size = File, fi.Size()
	case m.IsDir():
		e.Type = Dir
		opaque, err := isOpaque(p)
		if err != nil {
			return Entry{}, err
		}
		e.Opaque = opaque
	case m&fs.ModeSymlink != 0:
		target, err := os.Readlink(p)
		if err != nil {
			return Entry{}, err
		}
		e.Type, e.Target, e.Perm = Symlink, target, 0
	case m&fs.ModeCharDevice != 0:
		e.Type = CharDev
		if e.Major == 0 && e.Minor == 0 {
			e.Type = Whiteout
		}
	case m&fs.ModeDevice != 0:
		e.Type = BlockDev
	case m&fs.ModeNamedPipe != 0:
		e.Type = FIFO
	default:
		e.Type = Other
	}
	return e, nil
}

// isOpaque reports whether a directory carries trusted.overlay.opaque=y.
// A file system without extended attributes has no opaque directories.
func isOpaque(p string) (bool, error) {
	buf := make([]byte, 8)
	n, err := unix.Lgetxattr(p, unpack.OpaqueXattr, buf)
	switch {
	case err == nil:
		return n == 1 && buf[0] == 'y', nil
	case errors.Is(err, unix.ENODATA), errors.Is(err, unix.ENOTSUP):
		return false, nil
	default:
		return false, fmt.Errorf("failed to read %s of %s: %w", unpack.OpaqueXattr, p, err)
	}
}
