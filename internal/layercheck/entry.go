package layercheck

import (
	"fmt"
	"io/fs"
)

// Type is the kind of a file system entry.
type Type string

// Types. A whiteout is the overlay format's character device 0/0.
const (
	Dir      Type = "directory"
	File     Type = "file"
	Symlink  Type = "symlink"
	CharDev  Type = "character device"
	BlockDev Type = "block device"
	FIFO     Type = "fifo"
	Whiteout Type = "whiteout"
	Other    Type = "other"
)

// Entry is what a listing knows about one path.
type Entry struct {
	Type   Type
	Perm   fs.FileMode // permission bits with setuid, setgid and sticky
	UID    int
	GID    int
	Size   int64  // of a file
	Target string // of a symlink
	Major  uint32 // of a device
	Minor  uint32
	Opaque bool // a directory that hides the layers below

	// hardlink marks a file that a hard link shares: its permission bits
	// and owner are those of whichever entry set them last.
	hardlink bool
}

// Listing maps slash-separated paths relative to the layer root to entries.
type Listing map[string]Entry

// describe says what an entry is, for reports.
func (e Entry) describe() string {
	switch e.Type {
	case Symlink:
		return "symlink -> " + e.Target
	case File:
		return fmt.Sprintf("file %o %d:%d %d bytes", e.Perm, e.UID, e.GID, e.Size)
	case CharDev, BlockDev:
		return fmt.Sprintf("%s %d,%d", e.Type, e.Major, e.Minor)
	case Dir:
		if e.Opaque {
			return fmt.Sprintf("opaque directory %o %d:%d", e.Perm, e.UID, e.GID)
		}
		return fmt.Sprintf("directory %o %d:%d", e.Perm, e.UID, e.GID)
	default:
		return string(e.Type)
	}
}
