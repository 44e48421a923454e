// Package imageref parses the image references docker2cvmfs takes for its
// inputs and outputs. A reference names a transport and an image in it, in
// the syntax of skopeo and podman, with the daemon as the default:
//
//	NAME[:TAG]                       an image of the Docker daemon
//	docker-daemon:NAME[:TAG]         the same, spelled out
//	docker://HOST/NAME[:TAG|@DIGEST] an image in a registry
//	docker-archive:PATH[:NAME[:TAG]] a `docker save` archive on disk
//	oci:PATH[:TAG]                   an OCI image layout directory on disk
//
// PATH cannot hold a colon, since the first colon after it starts the image
// name.
package imageref

import (
	"errors"
	"fmt"
	"strings"
)

// Transport is where an image is read from or written to.
type Transport string

// Transports.
const (
	Daemon   Transport = "docker-daemon"
	Registry Transport = "docker"
	Archive  Transport = "docker-archive"
	Layout   Transport = "oci"
)

// Reference is a parsed image reference.
type Reference struct {
	Transport Transport
	// Path is the file or directory of an archive or a layout.
	Path string
	// Name is the image: NAME[:TAG] or NAME@DIGEST for the daemon and a
	// registry, the image's name inside an archive, the tag inside a
	// layout. It may be empty for an archive or layout holding one image.
	Name string
	// Raw is the reference as given.
	Raw string
}

// String returns the reference as given.
func (r Reference) String() string { return r.Raw }

// Parse parses a reference in the syntax of the package documentation.
func Parse(raw string) (Reference, error) {
	if raw == "" {
		return Reference{}, errors.New("empty image reference")
	}
	ref := Reference{Raw: raw}

	switch {
	case strings.HasPrefix(raw, "docker://"):
		ref.Transport = Registry
		ref.Name = strings.TrimPrefix(raw, "docker://")
		if ref.Name == "" {
			return Reference{}, fmt.Errorf("image reference %q names no image", raw)
		}
	case strings.HasPrefix(raw, string(Daemon)+":"):
		ref.Transport = Daemon
		ref.Name = strings.TrimPrefix(raw, string(Daemon)+":")
		if ref.Name == "" {
			return Reference{}, fmt.Errorf("image reference %q names no image", raw)
		}
	case strings.HasPrefix(raw, string(Archive)+":"):
		ref.Transport = Archive
		ref.Path, ref.Name, _ = strings.Cut(strings.TrimPrefix(raw, string(Archive)+":"), ":")
	case strings.HasPrefix(raw, string(Layout)+":"):
		ref.Transport = Layout
		ref.Path, ref.Name, _ = strings.Cut(strings.TrimPrefix(raw, string(Layout)+":"), ":")
	default:
		// A tag never starts with a slash or a dot: "dir:/tmp/x" is a
		// transport this tool does not know, not an image.
		if name, rest, ok := strings.Cut(raw, ":"); ok && !strings.Contains(name, "/") &&
			(strings.HasPrefix(rest, "/") || strings.HasPrefix(rest, ".")) {
			return Reference{}, fmt.Errorf("image reference %q: unknown transport %q (use docker-daemon:, docker://, docker-archive: or oci:)", raw, name)
		}
		ref.Transport = Daemon
		ref.Name = raw
	}

	if (ref.Transport == Archive || ref.Transport == Layout) && ref.Path == "" {
		return Reference{}, fmt.Errorf("image reference %q names no path", raw)
	}
	if strings.ContainsAny(ref.Name, " \t\n") {
		return Reference{}, fmt.Errorf("image reference %q holds blanks", raw)
	}
	return ref, nil
}
