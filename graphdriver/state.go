package graphdriver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

const (
	// StateFileName is the file in the state directory that holds the
	// arguments of the last successful Init.
	StateFileName = "init.json"

	// stateVersion is the format version written into the state file.
	stateVersion = 1
)

// savedInit is the content of the state file: the format version next to
// the Init arguments, all at the top level, for example
//
//	{"Version":1,"Home":"/var/lib/docker/cvmfs","Opts":null,"UIDMaps":null,"GIDMaps":null}
type savedInit struct {
	Version int
	InitOptions
}

// stateFile is where a handler keeps the last successful Init on disk, so
// that a restarted plugin can serve calls that dockerd sends without
// calling Init again.
type stateFile struct {
	dir string
}

func (s stateFile) path() string {
	return filepath.Join(s.dir, StateFileName)
}

// load reads the saved Init. A missing file is reported as
// ErrNotInitialized.
func (s stateFile) load() (InitOptions, error) {
	data, err := os.ReadFile(s.path())
	if errors.Is(err, fs.ErrNotExist) {
		return InitOptions{}, fmt.Errorf("%w: dockerd has not called GraphDriver.Init "+
			"since the plugin started, and %s does not exist", ErrNotInitialized, s.path())
	}
	if err != nil {
		return InitOptions{}, fmt.Errorf("failed to read saved Init: %w", err)
	}

	var saved savedInit
	if err := json.Unmarshal(data, &saved); err != nil {
		return InitOptions{}, fmt.Errorf("failed to decode saved Init in %s: %w", s.path(), err)
	}
	if saved.Version != stateVersion {
		return InitOptions{}, fmt.Errorf("saved Init in %s has version %d, this plugin reads version %d",
			s.path(), saved.Version, stateVersion)
	}
	if saved.Home == "" {
		return InitOptions{}, fmt.Errorf("saved Init in %s has no Home", s.path())
	}
	return saved.InitOptions, nil
}

// save writes opts to the state file atomically: a reader sees the old
// content or the new one, never a part of either, also across a crash.
func (s stateFile) save(opts InitOptions) (retErr error) {
	data, err := json.Marshal(savedInit{Version: stateVersion, InitOptions: opts})
	if err != nil {
		return fmt.Errorf("failed to encode Init for %s: %w", s.path(), err)
	}

	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("failed to create state directory: %w", err)
	}

	tmp, err := os.CreateTemp(s.dir, "."+StateFileName+".*")
	if err != nil {
		return fmt.Errorf("failed to create temporary state file: %w", err)
	}
	defer func() {
		if retErr != nil {
			// Every failing path has closed the file by now.
			if err := os.Remove(tmp.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
				retErr = errors.Join(retErr, fmt.Errorf("failed to remove temporary state file: %w", err))
			}
		}
	}()

	_, werr := tmp.Write(append(data, '\n'))
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("failed to write %s: %w", tmp.Name(), werr)
	}

	if err := os.Rename(tmp.Name(), s.path()); err != nil {
		return fmt.Errorf("failed to save Init: %w", err)
	}
	return syncDir(s.dir)
}

// remove deletes the state file, if there is one.
func (s stateFile) remove() error {
	if err := os.Remove(s.path()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("failed to remove saved Init: %w", err)
	}
	return nil
}

// syncDir flushes a directory, so that a rename in it survives a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("failed to open state directory: %w", err)
	}
	serr := d.Sync()
	cerr := d.Close()
	if err := errors.Join(serr, cerr); err != nil {
		return fmt.Errorf("failed to sync state directory %s: %w", dir, err)
	}
	return nil
}
