package repository

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Lock is a held lock on a repository.
type Lock struct{ f *os.File }

// LockShared takes the repository's lock for writing layers, waiting while
// gc --delete holds it.
func (r Repo) LockShared() (*Lock, error) { return r.lock(unix.LOCK_SH) }

// LockExclusive takes the repository's lock for removing layers, waiting
// while layers are being written.
func (r Repo) LockExclusive() (*Lock, error) { return r.lock(unix.LOCK_EX) }

func (r Repo) lock(how int) (*Lock, error) {
	p := r.LockPath()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, fmt.Errorf("failed to create %s: %w", filepath.Dir(p), err)
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("failed to open lock %s: %w", p, err)
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, fmt.Errorf("failed to lock %s: %w", p, err)
	}
	return &Lock{f: f}, nil
}

// Unlock releases the lock.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the last descriptor releases the flock
	l.f = nil
	return err
}
