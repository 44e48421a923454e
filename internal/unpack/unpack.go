package unpack

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/moby/go-archive"
)

// Unpack writes the uncompressed layer tar r into dir, an existing empty
// directory, with whiteouts in the given format. It reads r up to the end
// of the tar, not beyond: a caller that hashes the stream reads the rest
// (the end-of-archive padding) itself.
//
// An entry that breaks a rule of the package documentation stops it with an
// *UnsafeEntryError; so does any other failure, with what was written so far
// left in dir. Callers unpack into a temporary directory and remove it on
// error.
func Unpack(r io.Reader, dir string, format WhiteoutFormat) (retErr error) {
	opts := &archive.TarOptions{WhiteoutFormat: archive.AUFSWhiteoutFormat}
	switch format {
	case Overlay:
		opts.WhiteoutFormat = archive.OverlayWhiteoutFormat
	case AUFS:
	default:
		return fmt.Errorf("unknown whiteout format %d", int(format))
	}

	// The checked entries are written anew into a pipe that archive.Unpack
	// reads: it sees only entries that passed, and a refusal reaches it as
	// a read error before anything of the refused entry is written.
	pr, pw := io.Pipe()
	checked := make(chan error, 1)
	go func() {
		err := copyChecked(pw, r)
		pw.CloseWithError(err)
		checked <- err
	}()

	err := archive.Unpack(pr, dir, opts)
	// Unblock the copy if Unpack stopped early (a full disk, for instance).
	pr.CloseWithError(errUnpackStopped)
	checkErr := <-checked

	var unsafe *UnsafeEntryError
	switch {
	case errors.As(checkErr, &unsafe):
		return unsafe
	case checkErr != nil && !errors.Is(checkErr, errUnpackStopped):
		return fmt.Errorf("failed to read layer tar: %w", checkErr)
	case err != nil:
		return fmt.Errorf("failed to unpack layer into %s: %w", dir, err)
	}
	return nil
}

// errUnpackStopped ends the copy when archive.Unpack stopped reading.
var errUnpackStopped = errors.New("unpacking stopped")

// copyChecked reads a layer tar from r, checks each entry and writes those
// that pass to w as a tar. Extended attributes of overlay itself are not
// taken from the tar: only the tar's whiteout markers make a directory
// opaque, as when Docker applies a layer.
func copyChecked(w io.Writer, r io.Reader) error {
	g := newGuard()
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return tw.Close()
		}
		if err != nil {
			return err
		}
		skip, err := g.check(hdr)
		if err != nil {
			return err
		}
		if skip {
			continue
		}
		dropOverlayXattrs(hdr)
		// The writer picks a format that holds the header as it now is.
		hdr.Format = tar.FormatUnknown
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("failed to pass on entry %q: %w", hdr.Name, err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}

// dropOverlayXattrs removes trusted.overlay.* attributes from an entry.
func dropOverlayXattrs(hdr *tar.Header) {
	const paxXattr = "SCHILY.xattr."
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, paxXattr+"trusted.overlay.") {
			delete(hdr.PAXRecords, k)
		}
	}
	for k := range hdr.Xattrs { //nolint:staticcheck // the reader fills both
		if strings.HasPrefix(k, "trusted.overlay.") {
			delete(hdr.Xattrs, k) //nolint:staticcheck
		}
	}
}
