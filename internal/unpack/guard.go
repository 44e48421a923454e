package unpack

import (
	"archive/tar"
	"path"
	"path/filepath"
	"strings"
)

// guard checks the entries of one layer tar, in order, against the rules of
// the package documentation. It knows the layer only from the entries it
// has seen: the directory starts empty, so the only links that could be
// followed are the ones this tar made.
type guard struct {
	symlinks map[string]bool // entries that are symbolic links now
	files    map[string]bool // entries a hard link may name now
}

func newGuard() *guard {
	return &guard{symlinks: make(map[string]bool), files: make(map[string]bool)}
}

// check validates hdr, normalizes its name (and a hard link's target) in
// place, and records what it creates. It reports skip for an entry that
// names the layer root itself, which carries nothing to write.
func (g *guard) check(hdr *tar.Header) (skip bool, err error) {
	raw := hdr.Name
	name, err := localName(hdr.Name)
	if err != nil {
		return false, &UnsafeEntryError{Name: raw, Reason: err.Error()}
	}
	if name == "." {
		return true, nil
	}
	if link := g.linkAbove(name); link != "" {
		return false, &UnsafeEntryError{Name: raw, Reason: "it lies below the symbolic link " + link +
			" of the same layer, which must not be followed while the layer is written"}
	}

	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	case tar.TypeLink:
		target, err := localName(hdr.Linkname)
		if err != nil || target == "." {
			return false, &UnsafeEntryError{Name: raw, Reason: "it is a hard link to " + hdr.Linkname + ", outside the layer"}
		}
		if link := g.linkAbove(target); link != "" {
			return false, &UnsafeEntryError{Name: raw, Reason: "it is a hard link to " + hdr.Linkname +
				", which lies below the symbolic link " + link}
		}
		if !g.files[target] {
			return false, &UnsafeEntryError{Name: raw, Reason: "it is a hard link to " + hdr.Linkname +
				", which is not a file of the layer written before it"}
		}
		hdr.Linkname = target
	case tar.TypeXGlobalHeader:
		return true, nil
	default:
		return false, &UnsafeEntryError{Name: raw, Reason: "entries of type " + string(hdr.Typeflag) + " cannot be unpacked"}
	}
	hdr.Name = name

	g.record(name, hdr.Typeflag)
	return false, nil
}

// record updates what the layer holds at name after an entry of type typ.
func (g *guard) record(name string, typ byte) {
	dir, base := path.Split(name)
	if deleted, ok := strings.CutPrefix(base, WhiteoutPrefix); ok && base != OpaqueMarker {
		g.forget(path.Join(dir, deleted))
		return
	}
	g.forget(name)
	switch typ {
	case tar.TypeSymlink:
		g.symlinks[name] = true
	case tar.TypeDir:
	default:
		g.files[name] = true
	}
}

// forget drops what was recorded at p and below it.
func (g *guard) forget(p string) {
	delete(g.symlinks, p)
	delete(g.files, p)
	prefix := p + "/"
	for k := range g.files {
		if strings.HasPrefix(k, prefix) {
			delete(g.files, k)
		}
	}
}

// linkAbove returns the nearest ancestor of name that is a symbolic link of
// the layer, or "".
func (g *guard) linkAbove(name string) string {
	if len(g.symlinks) == 0 {
		return ""
	}
	for p := path.Dir(name); p != "."; p = path.Dir(p) {
		if g.symlinks[p] {
			return p
		}
	}
	return ""
}

// localName cleans a tar name into a slash-separated path relative to the
// layer root, dropping leading slashes as Docker does, and refuses one that
// leads out of the layer.
func localName(raw string) (string, error) {
	if raw == "" {
		return "", errString("it has no name")
	}
	if strings.ContainsRune(raw, 0) {
		return "", errString("its name holds a NUL byte")
	}
	name := path.Clean(strings.TrimLeft(raw, "/"))
	if name == "." {
		return name, nil
	}
	if !filepath.IsLocal(name) {
		return "", errString("it leads out of the layer")
	}
	return name, nil
}

// errString is an error made of a constant reason.
type errString string

func (e errString) Error() string { return string(e) }
