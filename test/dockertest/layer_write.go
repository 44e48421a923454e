package dockertest

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Whiteout markers of the layer tar format dockerd exchanges with drivers.
const (
	aufsWhiteoutPrefix = ".wh."
	aufsOpaqueMarker   = ".wh..wh..opq"
)

// The overlay format's opaque-directory attribute.
const (
	overlayOpaqueXattr = "trusted.overlay.opaque"
	overlayOpaqueValue = "y"
)

// fixtureTime is the modification time of every tar entry, so that a layer
// always packs into the same bytes and so has a stable digest.
var fixtureTime = time.Unix(1700000000, 0).UTC()

// WhiteoutFormat says how a layer directory records deletions.
type WhiteoutFormat int

const (
	// OverlayFormat is overlay's own: a whiteout is a character device 0/0
	// and an opaque directory carries trusted.overlay.opaque=y. A layer
	// published to CernVM-FS in a transaction with extended attributes
	// looks like this.
	OverlayFormat WhiteoutFormat = iota
	// AUFSFormat keeps the markers of the layer tar as plain files:
	// ".wh.<name>" for a whiteout and ".wh..wh..opq" in an opaque
	// directory. A layer published with `cvmfs_server ingest` looks like
	// this.
	AUFSFormat
)

// WriteDir writes the layer into dir, which must not exist yet, with its
// whiteouts and opaque directories in the given format.
func (l Layer) WriteDir(dir string, format WhiteoutFormat) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("failed to create parent of layer %s: %w", dir, err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("failed to create layer %s: %w", dir, err)
	}

	for _, e := range l.withParents() {
		if err := writeEntry(dir, e, format); err != nil {
			return fmt.Errorf("failed to write %s into layer %s: %w", e.Path, dir, err)
		}
	}
	return nil
}

// writeEntry creates one entry below root. Modes are set with chmod so that
// the umask does not change them.
func writeEntry(root string, e Entry, format WhiteoutFormat) error {
	p := filepath.Join(root, filepath.FromSlash(e.Path))
	switch e.Kind {
	case KindDir, KindOpaque:
		if err := os.Mkdir(p, 0o700); err != nil {
			return err
		}
		if e.Kind == KindOpaque {
			if err := markOpaque(p, format); err != nil {
				return err
			}
		}
		return os.Chmod(p, os.FileMode(e.perm()))
	case KindFile:
		r, err := e.open()
		if err != nil {
			return err
		}
		defer r.Close()
		return writeFile(p, r, e.perm())
	case KindSymlink:
		return os.Symlink(e.Target, p)
	case KindWhiteout:
		if format == AUFSFormat {
			marker := filepath.Join(filepath.Dir(p), aufsWhiteoutPrefix+filepath.Base(p))
			return writeFile(marker, strings.NewReader(""), defaultFileMode)
		}
		return syscall.Mknod(p, syscall.S_IFCHR, 0)
	default:
		return fmt.Errorf("unknown entry kind %d", e.Kind)
	}
}

// markOpaque makes the directory at p opaque in the given format.
func markOpaque(p string, format WhiteoutFormat) error {
	if format == AUFSFormat {
		return writeFile(filepath.Join(p, aufsOpaqueMarker), strings.NewReader(""), defaultFileMode)
	}
	if err := syscall.Setxattr(p, overlayOpaqueXattr, []byte(overlayOpaqueValue), 0); err != nil {
		return fmt.Errorf("failed to set %s: %w", overlayOpaqueXattr, err)
	}
	return nil
}

// writeFile creates a file with the content of r and the given mode.
func writeFile(p string, r io.Reader, perm uint32) error {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Chmod(p, os.FileMode(perm))
}

// open returns the content of a file entry.
func (e Entry) open() (io.ReadCloser, error) {
	if e.Source != "" {
		return os.Open(e.Source)
	}
	return io.NopCloser(strings.NewReader(e.Data)), nil
}

// size returns the length of a file entry's content.
func (e Entry) size() (int64, error) {
	if e.Source == "" {
		return int64(len(e.Data)), nil
	}
	info, err := os.Stat(e.Source)
	if err != nil {
		return 0, err
	}
	return info.Size(), nil
}

// WriteTar writes the layer as a layer tar in the format dockerd exchanges
// with drivers (`docker import`, `docker save`): a whiteout is an empty file
// ".wh.<name>" and an opaque directory holds an empty ".wh..wh..opq". Entries
// belong to root and carry a fixed time, so the same layer always gives the
// same bytes.
func (l Layer) WriteTar(w io.Writer) error {
	tw := tar.NewWriter(w)
	for _, e := range l.withParents() {
		if err := writeTarEntry(tw, e); err != nil {
			return fmt.Errorf("failed to add %s to layer tar: %w", e.Path, err)
		}
	}
	return tw.Close()
}

// writeTarEntry adds one entry, or its whiteout markers, to a tar.
func writeTarEntry(tw *tar.Writer, e Entry) error {
	hdr := &tar.Header{
		Name:    e.Path,
		Mode:    int64(e.perm()),
		ModTime: fixtureTime,
	}
	switch e.Kind {
	case KindDir:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
	case KindOpaque:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		return writeEmptyMarker(tw, path.Join(e.Path, aufsOpaqueMarker))
	case KindSymlink:
		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname = e.Target
		hdr.Mode = 0o777
	case KindWhiteout:
		return writeEmptyMarker(tw, path.Join(path.Dir(e.Path), aufsWhiteoutPrefix+path.Base(e.Path)))
	case KindFile:
		size, err := e.size()
		if err != nil {
			return err
		}
		hdr.Typeflag = tar.TypeReg
		hdr.Size = size
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		r, err := e.open()
		if err != nil {
			return err
		}
		defer r.Close()
		_, err = io.Copy(tw, r)
		return err
	default:
		return fmt.Errorf("unknown entry kind %d", e.Kind)
	}
	return tw.WriteHeader(hdr)
}

// writeEmptyMarker adds an empty regular file, as AUFS whiteouts are.
func writeEmptyMarker(tw *tar.Writer, name string) error {
	return tw.WriteHeader(&tar.Header{
		Name:     name,
		Typeflag: tar.TypeReg,
		Mode:     0o644,
		ModTime:  fixtureTime,
	})
}

// WriteTarFile writes the layer tar into a new file at p.
func (l Layer) WriteTarFile(p string) (retErr error) {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("failed to create layer tar: %w", err)
	}
	defer func() {
		if err := f.Close(); err != nil && retErr == nil {
			retErr = fmt.Errorf("failed to write layer tar %s: %w", p, err)
		}
	}()
	return l.WriteTar(f)
}
