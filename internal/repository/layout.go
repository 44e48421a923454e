package repository

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/thinimage"
)

// Names inside a repository.
const (
	// DefaultSubdirectory holds the layers unless told otherwise.
	DefaultSubdirectory = "layers"
	// MetaDir holds what docker2cvmfs keeps about the repository.
	MetaDir = ".thin"
	// RecordsDir, below MetaDir, holds the descriptor records.
	RecordsDir = "descriptors"
	// LockName, below MetaDir, is the lock file.
	LockName = "lock"
	// PartialPrefix starts the name of a layer being unpacked.
	PartialPrefix = ".partial-"
)

// Repo is one repository below a CernVM-FS root.
type Repo struct {
	// Root stands for /cvmfs.
	Root string
	// Name is the repository, "unpacked.cern.ch" for instance.
	Name string
	// Subdirectory holds the layers, slash-separated and relative to the
	// repository.
	Subdirectory string
}

// New checks a repository's name and layer subdirectory and returns it.
// The root must be absolute. The subdirectory is cleaned ("layers/" is
// "layers") and must stay inside the repository.
func New(root, name, subdirectory string) (Repo, error) {
	if !filepath.IsAbs(root) {
		return Repo{}, fmt.Errorf("cvmfs root %q is not an absolute path", root)
	}
	if name == "" {
		return Repo{}, errors.New("no repository given")
	}
	sub := path.Clean(strings.Trim(subdirectory, "/"))
	if subdirectory == "" {
		sub = DefaultSubdirectory
	}
	if sub == "." || !filepath.IsLocal(sub) || strings.HasPrefix(sub, MetaDir) {
		return Repo{}, fmt.Errorf("layer subdirectory %q must be a directory inside the repository", subdirectory)
	}
	r := Repo{Root: filepath.Clean(root), Name: name, Subdirectory: sub}

	// A URL this repository writes must be one every reader accepts.
	if _, err := thinimage.ParseURL(r.LayerURL(strings.Repeat("0", 64))); err != nil {
		return Repo{}, fmt.Errorf("repository %q with layer subdirectory %q: %w", name, subdirectory, err)
	}
	return r, nil
}

// Dir returns the repository's directory.
func (r Repo) Dir() string { return filepath.Join(r.Root, r.Name) }

// LayersDir returns the directory that holds the layers.
func (r Repo) LayersDir() string { return filepath.Join(r.Dir(), filepath.FromSlash(r.Subdirectory)) }

// LayerDir returns the directory of the layer with the given diff ID hex.
func (r Repo) LayerDir(hex string) string { return filepath.Join(r.LayersDir(), hex) }

// LayerURL returns the descriptor URL of the layer with the given hex.
func (r Repo) LayerURL(hex string) string {
	return thinimage.Scheme + "://" + r.Name + "/" + r.Subdirectory + "/" + hex
}

// RecordsDir returns the directory of the descriptor records.
func (r Repo) RecordsDir() string { return filepath.Join(r.Dir(), MetaDir, RecordsDir) }

// LockPath returns the lock file.
func (r Repo) LockPath() string { return filepath.Join(r.Dir(), MetaDir, LockName) }

// LayerEntry returns the descriptor entry of a layer.
func (r Repo) LayerEntry(diffID v1.Hash) (thinimage.Layer, error) {
	if diffID.Algorithm != "sha256" || len(diffID.Hex) != 64 {
		return thinimage.Layer{}, fmt.Errorf("layer diff ID %s is not a sha256 digest", diffID)
	}
	return thinimage.Layer{Digest: diffID.String(), URL: r.LayerURL(diffID.Hex)}, nil
}
