package cvmfs

import (
	"errors"
	"fmt"
	"sync"
)

// ErrNotAcquired is returned by Release for a repository that holds no
// reference.
var ErrNotAcquired = errors.New("repository was not acquired")

// Repositories counts the layers that use each repository and has a
// Mounter mount a repository for its first user and unmount it after its
// last. It is safe for concurrent use. Calls for one repository are
// serialized, so that it is never mounted twice at once; calls for
// different repositories run in parallel.
type Repositories struct {
	mounter Mounter

	mu    sync.Mutex
	repos map[string]*repoRefs
}

// repoRefs is the reference count of one repository, with the lock that
// serializes its mounts.
type repoRefs struct {
	mu   sync.Mutex
	refs int
}

// NewRepositories returns reference counts over m, all zero.
func NewRepositories(m Mounter) *Repositories {
	return &Repositories{mounter: m, repos: make(map[string]*repoRefs)}
}

// state returns the reference count of repo, creating it at zero.
func (r *Repositories) state(repo string) *repoRefs {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.repos[repo]
	if !ok {
		s = &repoRefs{}
		r.repos[repo] = s
	}
	return s
}

// Acquire takes a reference to repository repo, mounting it unless it is
// mounted. A repository that has no reference but is found mounted is taken
// over as it is, not mounted a second time: a plugin that was killed and
// started again finds the repositories its layers still use mounted, and
// rebuilds their counts by acquiring them once per layer. A repository
// that holds references but is found not mounted, because its client died
// and the Mounter detached what was left or because someone unmounted it,
// is mounted again, so that the layer gets a working repository. If the
// mount fails, no reference is taken.
func (r *Repositories) Acquire(repo string) error {
	if err := ValidateRepository(repo); err != nil {
		return err
	}
	s := r.state(repo)
	s.mu.Lock()
	defer s.mu.Unlock()

	mounted, err := r.mounter.Mounted(repo)
	if err != nil {
		return err
	}
	if !mounted {
		if err := r.mounter.Mount(repo); err != nil {
			return err
		}
	}
	s.refs++
	return nil
}

// AcquireAll takes a reference to each of repos, in order. If one fails,
// the references taken so far are released again, so that a layer either
// holds all its repositories or none.
func (r *Repositories) AcquireAll(repos []string) (retErr error) {
	var taken []string
	defer func() {
		if retErr != nil {
			retErr = errors.Join(retErr, r.ReleaseAll(taken))
		}
	}()
	for _, repo := range repos {
		if err := r.Acquire(repo); err != nil {
			return err
		}
		taken = append(taken, repo)
	}
	return nil
}

// Release gives back a reference to repository repo and unmounts it when
// it was the last. If the unmount fails, the reference is kept, so that a
// later Release tries again. Releasing a repository without a reference
// returns ErrNotAcquired.
func (r *Repositories) Release(repo string) error {
	if err := ValidateRepository(repo); err != nil {
		return err
	}
	s := r.state(repo)
	s.mu.Lock()
	defer s.mu.Unlock()

	switch {
	case s.refs == 0:
		return fmt.Errorf("failed to release repository %s: %w", repo, ErrNotAcquired)
	case s.refs > 1:
		s.refs--
		return nil
	}
	if err := r.mounter.Unmount(repo); err != nil {
		return err
	}
	s.refs = 0
	return nil
}

// ReleaseAll releases a reference to each of repos and returns every
// failure.
func (r *Repositories) ReleaseAll(repos []string) error {
	var errs []error
	for i := len(repos) - 1; i >= 0; i-- {
		errs = append(errs, r.Release(repos[i]))
	}
	return errors.Join(errs...)
}

// Refs returns how many references repository repo holds.
func (r *Repositories) Refs(repo string) int {
	s := r.state(repo)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refs
}

// Close unmounts every repository that still holds references, as the
// driver's Cleanup does when dockerd stops, and drops all counts. No other
// call may run while Close does.
func (r *Repositories) Close() error {
	r.mu.Lock()
	repos := make(map[string]*repoRefs, len(r.repos))
	for name, s := range r.repos {
		repos[name] = s
	}
	r.repos = make(map[string]*repoRefs)
	r.mu.Unlock()

	var errs []error
	for name, s := range repos {
		s.mu.Lock()
		if s.refs > 0 {
			errs = append(errs, r.mounter.Unmount(name))
			s.refs = 0
		}
		s.mu.Unlock()
	}
	return errors.Join(errs...)
}
