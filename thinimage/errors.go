package thinimage

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"
)

// ErrNotDirectory is matched, through errors.Is, by the error of a layer
// whose URL names something other than a directory.
var ErrNotDirectory = errors.New("not a directory")

// ErrOutsideRoot is matched, through errors.Is, by the error of a layer
// whose directory is a symbolic link that leads out of the CernVM-FS root.
var ErrOutsideRoot = errors.New("outside the cvmfs root")

// DescriptorError reports a descriptor that cannot be used: bad JSON, a
// missing or malformed field, or a version this reader does not implement.
type DescriptorError struct {
	// Path is the descriptor file, when the descriptor was read from one.
	Path string
	// Field is the offending field as a JSON path, "layers[2].url" for
	// instance; empty when the document as a whole is wrong.
	Field string
	// Reason says what is wrong, in words meant for the person who ran
	// the image.
	Reason string
	// Err is the error Reason was derived from, if any. It is there for
	// errors.Is and errors.As; the message shows it only when Reason is
	// empty.
	Err error
}

func (e *DescriptorError) Error() string {
	var b strings.Builder
	b.WriteString("thin image descriptor")
	if e.Path != "" {
		b.WriteString(" " + e.Path)
	}
	b.WriteString(": ")
	if e.Field != "" {
		fmt.Fprintf(&b, "field %q: ", e.Field)
	}
	switch {
	case e.Reason != "":
		b.WriteString(e.Reason)
	case e.Err != nil:
		b.WriteString(e.Err.Error())
	default:
		b.WriteString("invalid")
	}
	return b.String()
}

func (e *DescriptorError) Unwrap() error { return e.Err }

// URLError reports a layer URL that ParseURL refuses.
type URLError struct {
	URL    string
	Reason string
}

func (e *URLError) Error() string {
	return fmt.Sprintf("invalid cvmfs url %q: %s", e.URL, e.Reason)
}

// LayerError reports a descriptor layer whose directory cannot be used as a
// lower directory (rule 4 of the format).
type LayerError struct {
	// Index is the layer's position in the descriptor, base first from 0.
	// The message counts from 1, as a person reading thin.json would.
	Index  int
	Digest string
	URL    string
	// Repository is the CernVM-FS repository the URL names.
	Repository string
	// Dir is the directory the URL resolved to.
	Dir string
	// Err is the cause: an *fs.PathError from stat (wrapping
	// fs.ErrNotExist for a missing directory), or an error matching
	// ErrNotDirectory or ErrOutsideRoot.
	Err error
}

func (e *LayerError) Error() string {
	layer := fmt.Sprintf("layer %d of the thin image (digest %s, %s)",
		e.Index+1, shortDigest(e.Digest), e.URL)
	mounted := fmt.Sprintf("check that the CernVM-FS repository %s is mounted and holds this layer",
		e.Repository)
	switch {
	case errors.Is(e.Err, fs.ErrNotExist):
		return fmt.Sprintf("%s is missing: %s does not exist; %s", layer, e.Dir, mounted)
	case errors.Is(e.Err, ErrNotDirectory):
		return fmt.Sprintf("%s is not a directory: %v; "+
			"check that the url names the layer's directory", layer, e.Err)
	case errors.Is(e.Err, syscall.ENOTCONN) || errors.Is(e.Err, syscall.ECONNABORTED):
		// What a FUSE mount answers once its server has exited.
		return fmt.Sprintf("%s cannot be reached: %v; the CernVM-FS client of repository %s has died: "+
			"unmount the repository on the host (umount -l) so that it is mounted again", layer, e.Err, e.Repository)
	case errors.Is(e.Err, ErrOutsideRoot):
		return fmt.Sprintf("%s leads out of the CernVM-FS root: %v; "+
			"a layer must stay inside the root", layer, e.Err)
	default:
		return fmt.Sprintf("%s cannot be reached: %v; %s", layer, e.Err, mounted)
	}
}

func (e *LayerError) Unwrap() error { return e.Err }

// notDirError is the cause of a LayerError for a layer URL that names a
// file, a device or anything else but a directory.
type notDirError struct {
	path string
	mode fs.FileMode
}

func (e *notDirError) Error() string {
	return fmt.Sprintf("%s is %s", e.path, describeMode(e.mode))
}

func (e *notDirError) Is(target error) bool { return target == ErrNotDirectory }

// outsideRootError is the cause of a LayerError for a layer directory that
// symbolic links place outside the CernVM-FS root.
type outsideRootError struct {
	path, target, root string
}

func (e *outsideRootError) Error() string {
	return fmt.Sprintf("%s leads to %s, which is outside %s", e.path, e.target, e.root)
}

func (e *outsideRootError) Is(target error) bool { return target == ErrOutsideRoot }

// describeMode names a file type in words, for messages.
func describeMode(mode fs.FileMode) string {
	switch mode.Type() {
	case 0:
		return "a regular file"
	case fs.ModeSymlink:
		return "a symbolic link"
	case fs.ModeDevice, fs.ModeDevice | fs.ModeCharDevice:
		return "a device"
	case fs.ModeNamedPipe:
		return "a named pipe"
	case fs.ModeSocket:
		return "a socket"
	default:
		return "not a directory"
	}
}

// shortDigest shortens a digest for messages the way docker does: the
// first 12 hex digits, without the algorithm. The URL and directory printed
// next to it are never shortened.
func shortDigest(digest string) string {
	if _, hex, ok := strings.Cut(digest, ":"); ok {
		digest = hex
	}
	if len(digest) > 12 {
		return digest[:12]
	}
	return digest
}
