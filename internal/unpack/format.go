package unpack

import "fmt"

// WhiteoutFormat is how a layer directory records deletions and opaque
// directories.
type WhiteoutFormat int

const (
	// Overlay writes character devices 0/0 and trusted.overlay.opaque=y.
	Overlay WhiteoutFormat = iota
	// AUFS keeps ".wh.<name>" and ".wh..wh..opq" as plain files.
	AUFS
)

// String returns the format's name as flags spell it.
func (f WhiteoutFormat) String() string {
	switch f {
	case Overlay:
		return "overlay"
	case AUFS:
		return "aufs"
	default:
		return fmt.Sprintf("WhiteoutFormat(%d)", int(f))
	}
}

// ParseWhiteoutFormat parses "overlay" or "aufs".
func ParseWhiteoutFormat(s string) (WhiteoutFormat, error) {
	switch s {
	case "overlay":
		return Overlay, nil
	case "aufs":
		return AUFS, nil
	default:
		return 0, fmt.Errorf("unknown whiteout format %q (want overlay or aufs)", s)
	}
}

// Marker names of a layer tar.
const (
	// WhiteoutPrefix starts the name of a file that deletes the entry named
	// by the rest.
	WhiteoutPrefix = ".wh."
	// OpaqueMarker makes its directory opaque.
	OpaqueMarker = ".wh..wh..opq"
	// OpaqueXattr marks an opaque directory of an overlay layer.
	OpaqueXattr = "trusted.overlay.opaque"
)
