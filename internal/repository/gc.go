package repository

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Garbage is what gc found in a repository's layer directory.
type Garbage struct {
	// Unused are layer directories no record refers to.
	Unused []string
	// Partial are directories of layers whose unpacking never finished.
	Partial []string
	// InUse is the number of layer directories records refer to.
	InUse int
	// Records is the number of descriptor records read.
	Records int
}

// FindGarbage lists the entries of the layer directory that no recorded
// descriptor refers to, and the leftovers of interrupted runs. It removes
// nothing. A record that cannot be read makes it fail rather than guess.
func (r Repo) FindGarbage() (Garbage, error) {
	records, err := r.Records()
	if err != nil {
		return Garbage{}, err
	}
	used := make(map[string]bool)
	for _, rec := range records {
		layers, err := rec.Descriptor.Resolve(r.Root)
		if err != nil {
			return Garbage{}, fmt.Errorf("descriptor record %s: %w", rec.Path, err)
		}
		for _, l := range layers {
			used[filepath.Clean(l.Dir)] = true
		}
	}

	g := Garbage{Records: len(records)}
	entries, err := os.ReadDir(r.LayersDir())
	if errors.Is(err, fs.ErrNotExist) {
		return g, nil
	}
	if err != nil {
		return Garbage{}, fmt.Errorf("failed to list layers: %w", err)
	}
	for _, e := range entries {
		p := filepath.Join(r.LayersDir(), e.Name())
		switch {
		case strings.HasPrefix(e.Name(), PartialPrefix):
			g.Partial = append(g.Partial, p)
		case used[p]:
			g.InUse++
		default:
			g.Unused = append(g.Unused, p)
		}
	}
	sort.Strings(g.Unused)
	sort.Strings(g.Partial)
	return g, nil
}

// RemoveGarbage removes what FindGarbage found, under the repository's
// exclusive lock, after looking again under that lock so that a layer
// recorded in the meantime is kept. It returns what it removed.
func (r Repo) RemoveGarbage() (Garbage, error) {
	lock, err := r.LockExclusive()
	if err != nil {
		return Garbage{}, err
	}
	defer lock.Unlock()

	g, err := r.FindGarbage()
	if err != nil {
		return Garbage{}, err
	}
	for _, p := range append(append([]string(nil), g.Unused...), g.Partial...) {
		if err := os.RemoveAll(p); err != nil {
			return g, fmt.Errorf("failed to remove %s: %w", p, err)
		}
	}
	if len(g.Unused)+len(g.Partial) == 0 {
		return g, nil
	}
	return g, syncDir(r.LayersDir())
}
