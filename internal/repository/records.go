package repository

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/thinimage"
)

// recordSuffix ends the name of a descriptor record.
const recordSuffix = ".json"

// Record is a descriptor kept in the repository.
type Record struct {
	// Path is the record's file.
	Path string
	// Descriptor is its content.
	Descriptor *thinimage.Descriptor
}

// WriteRecord keeps a descriptor, given as the bytes of thin.json, in the
// repository and returns the record's path. Writing the same descriptor
// twice leaves one record. The record is written to a temporary file,
// flushed and renamed into place.
func (r Repo) WriteRecord(thinJSON []byte) (string, error) {
	if _, err := thinimage.Parse(thinJSON); err != nil {
		return "", fmt.Errorf("refusing to record a descriptor that does not parse: %w", err)
	}
	sum := sha256.Sum256(thinJSON)
	dir := r.RecordsDir()
	p := filepath.Join(dir, hex.EncodeToString(sum[:])+recordSuffix)

	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("failed to create %s: %w", dir, err)
	}
	if err := writeFileAtomic(p, thinJSON, 0o644); err != nil {
		return "", fmt.Errorf("failed to record descriptor: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return "", err
	}
	return p, nil
}

// Records returns every descriptor recorded in the repository, sorted by
// path. A record that cannot be read or parsed is an error: gc must not
// take the layers it names for unused.
func (r Repo) Records() ([]Record, error) {
	entries, err := os.ReadDir(r.RecordsDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to list descriptor records: %w", err)
	}
	var records []Record
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), recordSuffix) || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		p := filepath.Join(r.RecordsDir(), e.Name())
		d, err := thinimage.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("descriptor record %s cannot be used (repair or remove it): %w", p, err)
		}
		records = append(records, Record{Path: p, Descriptor: d})
	}
	sort.Slice(records, func(i, j int) bool { return records[i].Path < records[j].Path })
	return records, nil
}

// writeFileAtomic writes data to a temporary file next to p, flushes it and
// renames it to p.
func writeFileAtomic(p string, data []byte, mode os.FileMode) (retErr error) {
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".tmp-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if retErr != nil {
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}
