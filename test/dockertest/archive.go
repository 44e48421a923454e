package dockertest

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
)

// manifestName is the index of a `docker save` archive.
const manifestName = "manifest.json"

// imageConfig is the part of an image configuration that `docker load`
// needs.
type imageConfig struct {
	Architecture string      `json:"architecture"`
	OS           string      `json:"os"`
	Config       struct{}    `json:"config"`
	RootFS       imageRootFS `json:"rootfs"`
}

type imageRootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

// manifestEntry is one image of the manifest.json of a `docker save`
// archive.
type manifestEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// archiveFile is one file of an image archive.
type archiveFile struct {
	name string
	data []byte
}

// WriteImageArchive writes an archive in the format of `docker save`
// holding one image named ref (with a tag) made of layers, base first, into
// a new file at p. `docker load` of it gives an ordinary image of as many
// layers, each applied by the storage driver with its whiteouts.
func WriteImageArchive(p, ref string, layers ...Layer) error {
	cfg := imageConfig{Architecture: runtime.GOARCH, OS: "linux", RootFS: imageRootFS{Type: "layers"}}
	entry := manifestEntry{RepoTags: []string{ref}}
	var files []archiveFile
	for i, l := range layers {
		var buf bytes.Buffer
		if err := l.WriteTar(&buf); err != nil {
			return err
		}
		sum := sha256.Sum256(buf.Bytes())
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, "sha256:"+hex.EncodeToString(sum[:]))
		name := fmt.Sprintf("layer%d.tar", i)
		entry.Layers = append(entry.Layers, name)
		files = append(files, archiveFile{name, buf.Bytes()})
	}

	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("failed to encode image configuration: %w", err)
	}
	cfgSum := sha256.Sum256(cfgJSON)
	entry.Config = hex.EncodeToString(cfgSum[:]) + ".json"
	manifestJSON, err := json.Marshal([]manifestEntry{entry})
	if err != nil {
		return fmt.Errorf("failed to encode image manifest: %w", err)
	}
	files = append(files, archiveFile{entry.Config, cfgJSON}, archiveFile{manifestName, manifestJSON})

	return writeArchive(p, files)
}

// writeArchive writes files as a tar into a new file at p.
func writeArchive(p string, files []archiveFile) (retErr error) {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("failed to create archive: %w", err)
	}
	defer func() {
		if err := f.Close(); err != nil && retErr == nil {
			retErr = fmt.Errorf("failed to write archive %s: %w", p, err)
		}
	}()

	tw := tar.NewWriter(f)
	for _, file := range files {
		hdr := &tar.Header{
			Name:     file.name,
			Typeflag: tar.TypeReg,
			Mode:     0o644,
			Size:     int64(len(file.data)),
			ModTime:  fixtureTime,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("failed to write archive %s: %w", p, err)
		}
		if _, err := tw.Write(file.data); err != nil {
			return fmt.Errorf("failed to write archive %s: %w", p, err)
		}
	}
	return tw.Close()
}

// ArchiveLayers reads an archive written by `docker save` of a single image
// and returns that image's layer tars, base first.
func ArchiveLayers(p string) ([][]byte, error) {
	files, err := readArchive(p)
	if err != nil {
		return nil, err
	}

	var manifest []manifestEntry
	if err := json.Unmarshal(files[manifestName], &manifest); err != nil {
		return nil, fmt.Errorf("failed to read %s of %s: %w", manifestName, p, err)
	}
	if len(manifest) != 1 {
		return nil, fmt.Errorf("archive %s holds %d images, want 1", p, len(manifest))
	}

	var layers [][]byte
	for _, name := range manifest[0].Layers {
		data, ok := files[name]
		if !ok {
			return nil, fmt.Errorf("archive %s lacks layer %s named in its manifest", p, name)
		}
		layers = append(layers, data)
	}
	return layers, nil
}

// readArchive returns the regular files of a tar file by name. It is meant
// for the small archives of thin images.
func readArchive(p string) (map[string][]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("failed to open archive: %w", err)
	}
	defer f.Close()

	files := make(map[string][]byte)
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("failed to read archive %s: %w", p, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		if files[hdr.Name], err = io.ReadAll(tr); err != nil {
			return nil, fmt.Errorf("failed to read %s from archive %s: %w", hdr.Name, p, err)
		}
	}
}

// TarNames returns the names of the entries of a tar stream, and the
// content of the entry called want if there is one.
func TarNames(r io.Reader, want string) (names []string, content []byte, err error) {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return names, content, nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("failed to read tar: %w", err)
		}
		names = append(names, hdr.Name)
		if hdr.Name == want {
			if content, err = io.ReadAll(tr); err != nil {
				return nil, nil, fmt.Errorf("failed to read %s from tar: %w", want, err)
			}
		}
	}
}

// FileDigest returns "sha256:<hex>" of a file's content, the diff ID a layer
// tar gets when it is imported as it is.
func FileDigest(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("failed to open %s: %w", p, err)
	}
	defer f.Close()

	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("failed to read %s: %w", p, err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}
