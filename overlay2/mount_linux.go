package overlay2

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// MountError describes a failed mount system call with everything needed to
// reproduce it by hand.
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

// mountOverlay mounts an overlay on target. With relative set, the paths in
// data are relative to dir and the mount system call is made from there.
func mountOverlay(dir, target, data string, relative bool) error {
	mount := func() error {
		if err := unix.Mount("overlay", target, "overlay", 0, data); err != nil {
			me := &MountError{Source: "overlay", Target: target, FSType: "overlay", Data: data, Err: err}
			if relative {
				me.Dir = dir
			}
			return me
		}
		return nil
	}
	if !relative {
		return mount()
	}
	return inPrivateFS(dir, mount)
}

// unmount unmounts target if it is mounted. A busy mount is detached, as
// Docker's overlay2 does, so that a lingering reference elsewhere does not
// fail the caller.
func unmount(target string) error {
	err := unix.Unmount(target, 0)
	switch {
	case err == nil, errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
		return nil
	case errors.Is(err, unix.EBUSY):
		if err := unix.Unmount(target, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("failed to detach %s: %w", target, err)
		}
		return nil
	default:
		return fmt.Errorf("failed to unmount %s: %w", target, err)
	}
}

// unmountAllBelow unmounts every mount strictly below dir, deepest first.
func unmountAllBelow(dir string) error {
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return fmt.Errorf("failed to read the mount table: %w", err)
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].Mountpoint) > len(mounts[j].Mountpoint) })
	var errs []error
	for _, m := range mounts {
		if m.Mountpoint == dir || !strings.HasPrefix(m.Mountpoint, dir+"/") {
			continue
		}
		if err := unmount(m.Mountpoint); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
