package source

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// archiveManifestName is the index of a `docker save` archive.
const archiveManifestName = "manifest.json"

// maxArchiveJSON bounds the size of manifest.json and of a configuration.
const maxArchiveJSON = 16 << 20

// archiveEntry is one image of manifest.json.
type archiveEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// archive is an open `docker save` archive: the file and where each of its
// members lies in it. Members are read in place, so that a layer costs no
// copy and its size is known before it is read.
type archive struct {
	f        *os.File
	sections map[string]*io.SectionReader
	links    map[string]string // symbolic links between members
}

// OpenArchive opens the image called ref (NAME[:TAG], or empty when the
// archive holds one image) in a `docker save` archive at p. Origin is what
// the image reports as its origin.
func OpenArchive(p, ref, origin string) (img *Image, retErr error) {
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("failed to open image archive %s: %w: %w", p, ErrNotFound, err)
		}
		return nil, fmt.Errorf("failed to open image archive %s: %w", p, err)
	}
	defer func() {
		if retErr != nil {
			f.Close()
		}
	}()

	a, err := indexArchive(f)
	if err != nil {
		return nil, fmt.Errorf("failed to read image archive %s: %w", p, err)
	}
	entry, err := a.pick(ref)
	if err != nil {
		return nil, fmt.Errorf("image archive %s: %w", p, err)
	}

	raw, err := a.readJSON(entry.Config)
	if err != nil {
		return nil, fmt.Errorf("image archive %s: %w", p, err)
	}
	cfg, err := v1.ParseConfigFile(strings.NewReader(string(raw)))
	if err != nil {
		return nil, fmt.Errorf("image archive %s: failed to parse configuration %s: %w", p, entry.Config, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(entry.Layers) {
		return nil, fmt.Errorf("image archive %s: configuration lists %d layers and manifest.json %d",
			p, len(cfg.RootFS.DiffIDs), len(entry.Layers))
	}

	layers := make([]Layer, len(entry.Layers))
	for i, member := range entry.Layers {
		sec, err := a.member(member)
		if err != nil {
			return nil, fmt.Errorf("image archive %s: layer %d: %w", p, i+1, err)
		}
		layers[i] = Layer{
			DiffID: cfg.RootFS.DiffIDs[i],
			Size:   sec.Size(),
			open: func() (io.ReadCloser, error) {
				return io.NopCloser(io.NewSectionReader(sec, 0, sec.Size())), nil
			},
		}
	}
	return newImage(cfg, layers, origin, f.Close)
}

// indexArchive reads the headers of the tar and records where each regular
// member's content lies. tar.Reader skips content by seeking when it can,
// so this reads little more than the headers.
func indexArchive(f *os.File) (*archive, error) {
	a := &archive{f: f, sections: make(map[string]*io.SectionReader), links: make(map[string]string)}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		memberName := path.Clean(hdr.Name)
		switch hdr.Typeflag {
		case tar.TypeReg:
			off, err := f.Seek(0, io.SeekCurrent)
			if err != nil {
				return nil, err
			}
			a.sections[memberName] = io.NewSectionReader(f, off, hdr.Size)
		case tar.TypeSymlink:
			a.links[memberName] = path.Join(path.Dir(memberName), hdr.Linkname)
		case tar.TypeLink:
			a.links[memberName] = path.Clean(hdr.Linkname)
		}
	}
	if _, ok := a.sections[archiveManifestName]; !ok {
		return nil, fmt.Errorf("no %s: not an archive written by docker save", archiveManifestName)
	}
	return a, nil
}

// member returns the content of a member, following links between members.
func (a *archive) member(p string) (*io.SectionReader, error) {
	p = path.Clean(p)
	for range 16 {
		if sec, ok := a.sections[p]; ok {
			return sec, nil
		}
		target, ok := a.links[p]
		if !ok {
			return nil, fmt.Errorf("member %s is missing", p)
		}
		p = target
	}
	return nil, fmt.Errorf("member %s: too many links", p)
}

// readJSON returns the content of a small member.
func (a *archive) readJSON(p string) ([]byte, error) {
	sec, err := a.member(p)
	if err != nil {
		return nil, err
	}
	if sec.Size() > maxArchiveJSON {
		return nil, fmt.Errorf("member %s is %d bytes, too large", p, sec.Size())
	}
	return io.ReadAll(sec)
}

// pick returns the manifest.json entry of the image ref, or the only one
// when ref is empty.
func (a *archive) pick(ref string) (archiveEntry, error) {
	raw, err := a.readJSON(archiveManifestName)
	if err != nil {
		return archiveEntry{}, err
	}
	var entries []archiveEntry
	if err := json.Unmarshal(raw, &entries); err != nil {
		return archiveEntry{}, fmt.Errorf("failed to parse %s: %w", archiveManifestName, err)
	}

	if ref == "" {
		if len(entries) != 1 {
			return archiveEntry{}, fmt.Errorf("archive holds %d images: name one (docker-archive:PATH:NAME[:TAG])", len(entries))
		}
		return entries[0], nil
	}

	want, err := name.ParseReference(ref, name.WeakValidation)
	if err != nil {
		return archiveEntry{}, fmt.Errorf("failed to parse image name %q: %w", ref, err)
	}
	var tags []string
	for _, e := range entries {
		for _, tag := range e.RepoTags {
			tags = append(tags, tag)
			if got, err := name.ParseReference(tag, name.WeakValidation); err == nil && got.Name() == want.Name() {
				return e, nil
			}
		}
	}
	return archiveEntry{}, fmt.Errorf("no image %s among %s: %w", ref, strings.Join(tags, ", "), ErrNotFound)
}

// absPath returns p made absolute, for origins; p itself when that fails.
func absPath(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}
