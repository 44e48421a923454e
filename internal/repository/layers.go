package repository

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/moby/go-archive/compression"
	"golang.org/x/sys/unix"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/source"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/unpack"
)

// layerDirMode is the mode of a layer's root directory, as Docker gives a
// layer's diff directory.
const layerDirMode = 0o755

// ErrDigestMismatch is matched, through errors.Is, by the error of a layer
// whose content does not hash to its diff ID.
var ErrDigestMismatch = errors.New("layer content does not match its diff ID")

// HasLayer reports whether the layer with the given hex is in place. A
// path that exists but is no directory is an error: nothing that
// docker2cvmfs writes looks like that.
func (r Repo) HasLayer(hex string) (bool, error) {
	fi, err := os.Lstat(r.LayerDir(hex))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("failed to look for layer %s: %w", hex, err)
	case !fi.IsDir():
		return false, fmt.Errorf("layer path %s exists and is not a directory", r.LayerDir(hex))
	}
	return true, nil
}

// AddLayer unpacks a layer into the repository unless it is there already,
// and reports whether it was. progress, when not nil, counts the bytes of
// the layer as stored (compressed or not) as they are read.
//
// The layer is unpacked into a temporary directory next to its place,
// checked against its diff ID, flushed and renamed into place (see the
// package documentation). On any failure, a cancelled context included,
// the temporary directory is removed and nothing else has changed.
func (r Repo) AddLayer(ctx context.Context, l source.Layer, format unpack.WhiteoutFormat,
	progress io.Writer) (existed bool, retErr error) {
	hexID := l.DiffID.Hex
	if l.DiffID.Algorithm != "sha256" || len(hexID) != 64 {
		return false, fmt.Errorf("layer diff ID %s is not a sha256 digest", l.DiffID)
	}
	if ok, err := r.HasLayer(hexID); err != nil || ok {
		return ok, err
	}

	parent := r.LayersDir()
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return false, fmt.Errorf("failed to create layer directory %s: %w", parent, err)
	}
	tmp, err := os.MkdirTemp(parent, PartialPrefix+hexID[:12]+"-")
	if err != nil {
		return false, fmt.Errorf("failed to create a directory for layer %s in %s: %w", l.DiffID, parent, err)
	}
	defer func() {
		if retErr != nil {
			if err := os.RemoveAll(tmp); err != nil {
				retErr = errors.Join(retErr, fmt.Errorf("failed to remove partial layer %s: %w", tmp, err))
			}
		}
	}()
	if err := os.Chmod(tmp, layerDirMode); err != nil {
		return false, fmt.Errorf("failed to set the mode of %s: %w", tmp, err)
	}

	if err := unpackVerified(ctx, l, tmp, format, progress); err != nil {
		return false, err
	}

	if err := syncFS(tmp); err != nil {
		return false, err
	}
	final := r.LayerDir(hexID)
	if err := os.Rename(tmp, final); err != nil {
		// Another run put the same layer in place first: use that one.
		if ok, herr := r.HasLayer(hexID); herr == nil && ok {
			return true, os.RemoveAll(tmp)
		}
		return false, fmt.Errorf("failed to move layer %s into place: %w", l.DiffID, err)
	}
	if err := syncDir(parent); err != nil {
		return false, err
	}
	return false, nil
}

// unpackVerified reads the layer, decompresses it, unpacks it into dir and
// checks that the uncompressed bytes hash to the diff ID.
func unpackVerified(ctx context.Context, l source.Layer, dir string, format unpack.WhiteoutFormat,
	progress io.Writer) error {
	rc, err := l.Open()
	if err != nil {
		return err
	}
	defer rc.Close()

	var stored io.Reader = &ctxReader{ctx: ctx, r: rc}
	if progress != nil {
		stored = io.TeeReader(stored, progress)
	}
	plain, err := compression.DecompressStream(stored)
	if err != nil {
		return fmt.Errorf("failed to decompress layer %s: %w", l.DiffID, err)
	}
	defer plain.Close()

	h := sha256.New()
	tarStream := io.TeeReader(plain, h)
	if err := unpack.Unpack(tarStream, dir, format); err != nil {
		return fmt.Errorf("layer %s: %w", l.DiffID, err)
	}
	// The end-of-archive blocks belong to the digest too.
	if _, err := io.Copy(io.Discard, tarStream); err != nil {
		return fmt.Errorf("failed to read layer %s: %w", l.DiffID, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != l.DiffID.Hex {
		return fmt.Errorf("layer %s: content hashes to sha256:%s: %w", l.DiffID, got, ErrDigestMismatch)
	}
	return nil
}

// ctxReader fails reads once its context is done, so that a cancelled run
// stops in the middle of a layer.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// syncFS flushes the file system holding dir: one syncfs(2) writes every
// file of the new layer, where an fsync per file would cost a call each.
func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("failed to open %s: %w", dir, err)
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("failed to flush %s to disk: %w", dir, err)
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("failed to open %s: %w", dir, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("failed to flush directory %s: %w", filepath.Clean(dir), err)
	}
	return nil
}
