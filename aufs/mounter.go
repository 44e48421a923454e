package aufs

import (
	"fmt"
)

// mounter is the mount step of the backend: the two system calls it needs,
// with the arguments of mount(2) and umount2(2). The kernel's mounter makes
// them; the tests put a recording one, or one that emulates aufs, in its
// place. A call with relative paths in data is made with the home directory
// as working directory, and errors carry the errno of the call (for
// errors.Is with unix.EINVAL, unix.EBUSY and so on).
type mounter interface {
	Mount(source, target, fstype string, flags uintptr, data string) error
	Unmount(target string, flags int) error
}

// flusher is implemented by a mounter whose mounts hold a layer's writes
// apart from its writable branch until asked to write them through, as the
// tests' emulation of aufs does. The driver calls Flush on a mounted
// layer's mount point before it reads the layer's branch. The kernel's aufs
// writes to the branch at once; its mounter does not implement flusher.
type flusher interface {
	Flush(target string) error
}

// MountError describes a failed mount system call with everything needed to
// make it again by hand.
type MountError struct {
	Source, Target, FSType string
	Flags                  uintptr
	Data                   string
	// Dir is the working directory relative paths in Data are resolved
	// against; empty when Data holds absolute paths.
	Dir string
	Err error
}

func (e *MountError) Error() string {
	data := e.Data
	const show = 512
	if len(data) > show {
		data = data[:show] + fmt.Sprintf("... (%d bytes)", len(e.Data))
	}
	where := ""
	if e.Dir != "" {
		where = " from " + e.Dir
	}
	return fmt.Sprintf("mount %s on %s (type %s, flags %#x, data %q)%s: %v",
		e.Source, e.Target, e.FSType, e.Flags, data, where, e.Err)
}

func (e *MountError) Unwrap() error { return e.Err }
