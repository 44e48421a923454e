package cvmfs

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/cvmfs/cvmfstest"
)

// recordingMounter records its calls to Mount and Unmount, fails those
// listed in fail, keeps which repositories are mounted, and reports calls
// for one repository that overlap.
type recordingMounter struct {
	mu      sync.Mutex
	calls   []string
	fail    map[string]bool // "Mount repo" or "Unmount repo"
	mounted map[string]bool
	busy    map[string]bool
	overlap atomic.Bool
}

func newRecordingMounter() *recordingMounter {
	return &recordingMounter{fail: make(map[string]bool), mounted: make(map[string]bool), busy: make(map[string]bool)}
}

func (m *recordingMounter) do(op, repo string) error {
	m.mu.Lock()
	if m.busy[repo] {
		m.overlap.Store(true)
	}
	m.busy[repo] = true
	m.mu.Unlock()

	time.Sleep(time.Millisecond) // a real mount takes a while

	m.mu.Lock()
	defer m.mu.Unlock()
	m.busy[repo] = false
	call := op + " " + repo
	m.calls = append(m.calls, call)
	if m.fail[call] {
		return fmt.Errorf("%s failed", call)
	}
	m.mounted[repo] = op == "Mount"
	return nil
}

func (m *recordingMounter) Mount(repo string) error   { return m.do("Mount", repo) }
func (m *recordingMounter) Unmount(repo string) error { return m.do("Unmount", repo) }

func (m *recordingMounter) Mounted(repo string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mounted[repo], nil
}

func (m *recordingMounter) recorded() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.calls)
}

func TestRepositoriesCount(t *testing.T) {
	m := newRecordingMounter()
	r := NewRepositories(m)

	steps := []struct {
		op        string // "acquire" or "release"
		repo      string
		wantErr   error
		wantRefs  int
		wantCalls []string
	}{
		{op: "acquire", repo: "a.cern.ch", wantRefs: 1, wantCalls: []string{"Mount a.cern.ch"}},
		{op: "acquire", repo: "a.cern.ch", wantRefs: 2, wantCalls: []string{"Mount a.cern.ch"}},
		{op: "acquire", repo: "b.cern.ch", wantRefs: 1, wantCalls: []string{"Mount a.cern.ch", "Mount b.cern.ch"}},
		{op: "release", repo: "a.cern.ch", wantRefs: 1, wantCalls: []string{"Mount a.cern.ch", "Mount b.cern.ch"}},
		{op: "release", repo: "a.cern.ch", wantRefs: 0,
			wantCalls: []string{"Mount a.cern.ch", "Mount b.cern.ch", "Unmount a.cern.ch"}},
		{op: "release", repo: "a.cern.ch", wantErr: ErrNotAcquired, wantRefs: 0,
			wantCalls: []string{"Mount a.cern.ch", "Mount b.cern.ch", "Unmount a.cern.ch"}},
		{op: "acquire", repo: "a.cern.ch", wantRefs: 1,
			wantCalls: []string{"Mount a.cern.ch", "Mount b.cern.ch", "Unmount a.cern.ch", "Mount a.cern.ch"}},
	}
	for i, s := range steps {
		var err error
		if s.op == "acquire" {
			err = r.Acquire(s.repo)
		} else {
			err = r.Release(s.repo)
		}
		if !errors.Is(err, s.wantErr) {
			t.Fatalf("step %d: %s %s: got error %v, want %v", i, s.op, s.repo, err, s.wantErr)
		}
		if got := r.Refs(s.repo); got != s.wantRefs {
			t.Errorf("step %d: %s %s: %d references, want %d", i, s.op, s.repo, got, s.wantRefs)
		}
		if got := m.recorded(); !slices.Equal(got, s.wantCalls) {
			t.Errorf("step %d: %s %s: calls %q, want %q", i, s.op, s.repo, got, s.wantCalls)
		}
	}

	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	got := m.recorded()[len(steps[len(steps)-1].wantCalls):]
	slices.Sort(got)
	if want := []string{"Unmount a.cern.ch", "Unmount b.cern.ch"}; !slices.Equal(got, want) {
		t.Errorf("Close made the calls %q, want %q", got, want)
	}
	if got := r.Refs("a.cern.ch"); got != 0 {
		t.Errorf("%d references after Close, want 0", got)
	}
}

func TestRepositoriesFailures(t *testing.T) {
	t.Run("failed mount takes no reference", func(t *testing.T) {
		m := newRecordingMounter()
		m.fail["Mount a.cern.ch"] = true
		r := NewRepositories(m)

		if err := r.Acquire("a.cern.ch"); err == nil {
			t.Fatal("Acquire succeeded although the mount failed")
		}
		if got := r.Refs("a.cern.ch"); got != 0 {
			t.Errorf("%d references after a failed mount, want 0", got)
		}
	})

	t.Run("failed unmount keeps the reference", func(t *testing.T) {
		m := newRecordingMounter()
		m.fail["Unmount a.cern.ch"] = true
		r := NewRepositories(m)

		if err := r.Acquire("a.cern.ch"); err != nil {
			t.Fatal(err)
		}
		if err := r.Release("a.cern.ch"); err == nil {
			t.Fatal("Release succeeded although the unmount failed")
		}
		if got := r.Refs("a.cern.ch"); got != 1 {
			t.Errorf("%d references after a failed unmount, want 1", got)
		}
		m.fail["Unmount a.cern.ch"] = false
		if err := r.Release("a.cern.ch"); err != nil {
			t.Errorf("second Release: %v", err)
		}
	})

	t.Run("AcquireAll takes all or none", func(t *testing.T) {
		m := newRecordingMounter()
		m.fail["Mount c.cern.ch"] = true
		r := NewRepositories(m)

		if err := r.AcquireAll([]string{"a.cern.ch", "b.cern.ch", "c.cern.ch"}); err == nil {
			t.Fatal("AcquireAll succeeded although a mount failed")
		}
		for _, repo := range []string{"a.cern.ch", "b.cern.ch", "c.cern.ch"} {
			if got := r.Refs(repo); got != 0 {
				t.Errorf("%s holds %d references after a failed AcquireAll, want 0", repo, got)
			}
		}
		want := []string{"Mount a.cern.ch", "Mount b.cern.ch", "Mount c.cern.ch", "Unmount b.cern.ch", "Unmount a.cern.ch"}
		if got := m.recorded(); !slices.Equal(got, want) {
			t.Errorf("calls %q, want %q", got, want)
		}
	})

	t.Run("invalid name", func(t *testing.T) {
		r := NewRepositories(newRecordingMounter())
		if err := r.Acquire("../etc"); !errors.Is(err, errBadRepository) {
			t.Errorf("Acquire(../etc) = %v, want an invalid name error", err)
		}
	})
}

// TestRepositoriesTakeOverMounted starts counting over a repository that
// is already mounted, as a restarted plugin finds the repositories of the
// layers it left mounted: it is not mounted again, and the last Release
// unmounts it.
func TestRepositoriesTakeOverMounted(t *testing.T) {
	m := newRecordingMounter()
	m.mounted["a.cern.ch"] = true
	r := NewRepositories(m)

	for range 2 {
		if err := r.Acquire("a.cern.ch"); err != nil {
			t.Fatal(err)
		}
	}
	if got := m.recorded(); len(got) != 0 {
		t.Errorf("acquiring a mounted repository made the calls %q, want none", got)
	}
	if err := r.ReleaseAll([]string{"a.cern.ch", "a.cern.ch"}); err != nil {
		t.Fatal(err)
	}
	if got, want := m.recorded(), []string{"Unmount a.cern.ch"}; !slices.Equal(got, want) {
		t.Errorf("releasing it made the calls %q, want %q", got, want)
	}
}

// TestRepositoriesConcurrent acquires and releases repositories from many
// goroutines: each repository is mounted once and unmounted once, and
// never by two calls at a time.
func TestRepositoriesConcurrent(t *testing.T) {
	m := newRecordingMounter()
	r := NewRepositories(m)
	repos := []string{"a.cern.ch", "b.cern.ch", "c.cern.ch"}

	const users = 20
	var wg sync.WaitGroup
	for i := range users * len(repos) {
		wg.Go(func() {
			if err := r.Acquire(repos[i%len(repos)]); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for _, repo := range repos {
		if got := r.Refs(repo); got != users {
			t.Errorf("%s holds %d references, want %d", repo, got, users)
		}
	}
	for i := range users * len(repos) {
		wg.Go(func() {
			if err := r.Release(repos[i%len(repos)]); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()

	if m.overlap.Load() {
		t.Error("two calls for one repository ran at the same time")
	}
	got := m.recorded()
	slices.Sort(got)
	want := []string{"Mount a.cern.ch", "Mount b.cern.ch", "Mount c.cern.ch",
		"Unmount a.cern.ch", "Unmount b.cern.ch", "Unmount c.cern.ch"}
	if !slices.Equal(got, want) {
		t.Errorf("calls %q, want each repository mounted and unmounted once: %q", got, want)
	}
}

// TestRepositoriesMountAgain finds a repository that holds a reference
// unmounted, as after its client died: the next Acquire mounts it again.
func TestRepositoriesMountAgain(t *testing.T) {
	m := newRecordingMounter()
	r := NewRepositories(m)

	if err := r.Acquire("a.cern.ch"); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	m.mounted["a.cern.ch"] = false
	m.mu.Unlock()
	if err := r.Acquire("a.cern.ch"); err != nil {
		t.Fatal(err)
	}
	if got, want := m.recorded(), []string{"Mount a.cern.ch", "Mount a.cern.ch"}; !slices.Equal(got, want) {
		t.Errorf("calls %q, want %q", got, want)
	}
	if got := r.Refs("a.cern.ch"); got != 2 {
		t.Errorf("%d references, want 2", got)
	}
}

// TestRepositoriesRunClient counts references over the real Client with a
// fake cvmfs2 on PATH that mounts a tmpfs: two users of a repository run
// one cvmfs2, and the last Release unmounts it.
func TestRepositoriesRunClient(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	log := fakeTools(t)
	t.Setenv("FAKE_CVMFS_MOUNT", "1")
	root := t.TempDir()
	c := &Client{Root: root, UID: 7, GID: 8}
	t.Cleanup(func() { unmount(c.Mountpoint("unpacked.cern.ch")) })
	r := NewRepositories(c)

	for range 2 {
		if err := r.Acquire("unpacked.cern.ch"); err != nil {
			t.Fatal(err)
		}
	}
	got := calls(t, log)
	if len(got) != 1 || got[0][0] != "cvmfs2" || got[0][3] != "unpacked.cern.ch" {
		t.Fatalf("two Acquires ran %q, want one cvmfs2", got)
	}
	for range 2 {
		if err := r.Release("unpacked.cern.ch"); err != nil {
			t.Fatal(err)
		}
	}
	if got := calls(t, log); len(got) != 1 {
		t.Errorf("Release ran %q; unmounting needs no program", got[1:])
	}
	if isMounted(t, c.Mountpoint("unpacked.cern.ch")) {
		t.Error("the repository is still mounted after the last Release")
	}
}

// TestRepositoriesReplaceDeadMount kills the client of a repository in
// use, leaving a FUSE mount without its server where the repository was:
// the next Acquire detaches it and runs the client again, and the new mount
// answers.
func TestRepositoriesReplaceDeadMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	log := fakeTools(t)
	t.Setenv("FAKE_CVMFS_MOUNT", "1")
	c := &Client{Root: t.TempDir()}
	target := c.Mountpoint("unpacked.cern.ch")
	t.Cleanup(func() {
		for isMounted(t, target) {
			if err := detach(target); err != nil {
				t.Errorf("failed to detach %s: %v", target, err)
				return
			}
		}
	})
	r := NewRepositories(c)

	if err := r.Acquire("unpacked.cern.ch"); err != nil {
		t.Fatal(err)
	}
	if err := unmount(target); err != nil {
		t.Fatal(err)
	}
	cvmfstest.DeadMount(t, target)

	if err := r.Acquire("unpacked.cern.ch"); err != nil {
		t.Fatalf("Acquire over a dead mount: %v", err)
	}
	if got := calls(t, log); len(got) != 2 {
		t.Errorf("the client ran %d times, want twice: once at first, once after its mount died", len(got))
	}
	if _, err := os.Stat(target); err != nil {
		t.Errorf("the repository after Acquire: %v, want a working mount", err)
	}
	if err := r.ReleaseAll([]string{"unpacked.cern.ch", "unpacked.cern.ch"}); err != nil {
		t.Fatal(err)
	}
	if isMounted(t, target) {
		t.Error("the repository is still mounted after the last Release")
	}
}
