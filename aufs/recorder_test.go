package aufs

import (
	"sync"

	"golang.org/x/sys/unix"
)

// recorder is a mounter that notes every call, with the working directory
// it was made from, and hands it on to next, the emulator or the kernel's
// mounter.
type recorder struct {
	next mounter

	mu    sync.Mutex
	calls []recordedCall
}

// recordedCall is one call a recorder saw.
type recordedCall struct {
	unmount bool
	source  string
	target  string
	fstype  string
	flags   uintptr // mount flags, or umount2 flags for an unmount
	data    string
	dir     string // working directory of the call
	err     error
}

// Mount implements mounter.
func (r *recorder) Mount(source, target, fstype string, flags uintptr, data string) error {
	dir, _ := unix.Getwd()
	err := r.next.Mount(source, target, fstype, flags, data)
	r.note(recordedCall{source: source, target: target, fstype: fstype, flags: flags, data: data, dir: dir, err: err})
	return err
}

// Unmount implements mounter.
func (r *recorder) Unmount(target string, flags int) error {
	dir, _ := unix.Getwd()
	err := r.next.Unmount(target, flags)
	r.note(recordedCall{unmount: true, target: target, flags: uintptr(flags), dir: dir, err: err})
	return err
}

// Flush implements flusher for the emulator behind the recorder.
func (r *recorder) Flush(target string) error {
	if f, ok := r.next.(flusher); ok {
		return f.Flush(target)
	}
	return nil
}

func (r *recorder) note(c recordedCall) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, c)
}

// take returns the calls recorded since the last take.
func (r *recorder) take() []recordedCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	calls := r.calls
	r.calls = nil
	return calls
}
