package publish

import (
	"context"
	"fmt"
	"os"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/repository"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/unpack"
)

// Publisher opens change sets on a repository.
type Publisher interface {
	// Begin opens a change set. Until it is committed or aborted, layers
	// and records may be written into the repository's directory.
	Begin(ctx context.Context) (Change, error)
	// WhiteoutFormat is the format layers must be unpacked in to reach
	// the repository intact.
	WhiteoutFormat() unpack.WhiteoutFormat
	// Describe says where layers go, for messages.
	Describe() string
}

// Change is an open change set.
type Change interface {
	// Commit makes what was written visible to clients.
	Commit(ctx context.Context) error
	// Abort drops what was written since Begin, where the publisher can.
	Abort(ctx context.Context) error
}

// Local publishes into a plain directory laid out like a repository.
type Local struct {
	Repo repository.Repo
}

// Begin makes sure the repository directory exists and can be written,
// and takes the repository's shared lock.
func (l Local) Begin(context.Context) (Change, error) {
	dir := l.Repo.Dir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("failed to create repository directory %s: %w", dir, err)
	}
	lock, err := l.Repo.LockShared()
	if err != nil {
		return nil, fmt.Errorf("repository %s cannot be written: %w", dir, err)
	}
	return localChange{lock: lock}, nil
}

// WhiteoutFormat is Overlay: a local directory keeps devices and trusted
// attributes, and the graphdriver mounts such layers as they are.
func (Local) WhiteoutFormat() unpack.WhiteoutFormat { return unpack.Overlay }

// Describe names the directory.
func (l Local) Describe() string { return "directory " + l.Repo.Dir() }

// localChange needs no commit: layers and records are put in place
// atomically one by one as they are written.
type localChange struct{ lock *repository.Lock }

func (c localChange) Commit(context.Context) error { return c.lock.Unlock() }
func (c localChange) Abort(context.Context) error  { return c.lock.Unlock() }
