package layercheck

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/unpack"
)

// FromTar returns the listing a layer directory unpacked from the layer tar
// r in the given whiteout format must have. The second result holds the
// directories the tar implies without listing them (parents of its
// entries), which the directory may hold with any metadata.
func FromTar(r io.Reader, format unpack.WhiteoutFormat) (Listing, map[string]bool, error) {
	want := make(Listing)
	implied := make(map[string]bool)
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("failed to read layer tar: %w", err)
		}
		name := path.Clean(strings.TrimLeft(hdr.Name, "/"))
		if name == "." || hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		for p := path.Dir(name); p != "."; p = path.Dir(p) {
			implied[p] = true
		}

		dir, base := path.Split(name)
		dir = path.Clean(dir)
		if format == unpack.Overlay && strings.HasPrefix(base, unpack.WhiteoutPrefix) {
			if base == unpack.OpaqueMarker {
				e := want[dir]
				if dir != "." && e.Type == "" {
					e = Entry{Type: Dir, Perm: 0o755}
				}
				e.Opaque = true
				if dir != "." {
					want[dir] = e
				}
				continue
			}
			deleted := path.Join(dir, strings.TrimPrefix(base, unpack.WhiteoutPrefix))
			want[deleted] = Entry{Type: Whiteout}
			continue
		}

		e := Entry{
			Perm: fs.FileMode(hdr.Mode) & (fs.ModePerm | 0o7000),
			UID:  hdr.Uid,
			GID:  hdr.Gid,
		}
		switch hdr.Typeflag {
		case tar.TypeReg:
			e.Type, e.Size = File, hdr.Size
		case tar.TypeDir:
			e.Type = Dir
			e.Opaque = want[name].Opaque
		case tar.TypeSymlink:
			e.Type, e.Target, e.Perm = Symlink, hdr.Linkname, 0
		case tar.TypeLink:
			target := path.Clean(strings.TrimLeft(hdr.Linkname, "/"))
			t, ok := want[target]
			if !ok {
				return nil, nil, fmt.Errorf("layer tar: hard link %s names %s, which comes before it in no entry", name, hdr.Linkname)
			}
			t.hardlink = true
			want[target] = t
			e = t
		case tar.TypeChar:
			e.Type, e.Major, e.Minor = CharDev, uint32(hdr.Devmajor), uint32(hdr.Devminor)
		case tar.TypeBlock:
			e.Type, e.Major, e.Minor = BlockDev, uint32(hdr.Devmajor), uint32(hdr.Devminor)
		case tar.TypeFifo:
			e.Type = FIFO
		default:
			e.Type = Other
		}
		want[name] = e
	}
	return want, implied, nil
}
