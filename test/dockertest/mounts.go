package dockertest

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// MountsUnder returns the mount points at dir or below it, deepest first, as
// /proc/self/mountinfo lists them. The tests and the daemons they start
// share one mount namespace, so this sees every mount a legacy plugin or
// dockerd made.
func MountsUnder(dir string) ([]string, error) {
	return mountsUnder("/proc/self/mountinfo", dir)
}

// MountsUnderIn returns the mount points at dir or below it, as MountsUnder
// does, in the mount namespace of process pid: that of a managed plugin,
// whose mounts outside its propagated mount the tests cannot see.
func MountsUnderIn(pid int, dir string) ([]string, error) {
	return mountsUnder(filepath.Join("/proc", strconv.Itoa(pid), "mountinfo"), dir)
}

func mountsUnder(mountinfo, dir string) ([]string, error) {
	f, err := os.Open(mountinfo)
	if err != nil {
		return nil, fmt.Errorf("failed to read mount table: %w", err)
	}
	defer f.Close()

	var found []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024) // overlay options can be long
	for sc.Scan() {
		// Fields: id parent major:minor root mount-point options ...
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountPath(fields[4])
		if isWithin(mp, dir) {
			found = append(found, mp)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("failed to read mount table: %w", err)
	}

	// Deepest first, so that a mount is never unmounted before one on top
	// of it; the same path may be mounted more than once.
	sort.SliceStable(found, func(i, j int) bool {
		return strings.Count(found[i], "/") > strings.Count(found[j], "/")
	})
	return found, nil
}

// UnmountAll unmounts every mount at dir or below it, deepest first. A mount
// that is busy is detached lazily so that the next one can go. It returns the
// mount points it could not unmount at all.
func UnmountAll(dir string) error {
	mounts, err := MountsUnder(dir)
	if err != nil {
		return err
	}

	var errs []error
	for _, mp := range mounts {
		err := syscall.Unmount(mp, 0)
		if errors.Is(err, syscall.EBUSY) {
			err = syscall.Unmount(mp, syscall.MNT_DETACH)
		}
		if err != nil && !errors.Is(err, syscall.EINVAL) { // EINVAL: no longer a mount point
			errs = append(errs, fmt.Errorf("failed to unmount %s: %w", mp, err))
		}
	}
	return errors.Join(errs...)
}

// isWithin reports whether path is dir or lies below it.
func isWithin(path, dir string) bool {
	dir = filepath.Clean(dir)
	return path == dir || strings.HasPrefix(path, dir+"/")
}

// unescapeMountPath undoes the octal escapes (\040 for a space and so on)
// the kernel writes into mountinfo for blanks and backslashes.
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// DeadFUSEMount leaves on target what a CernVM-FS client that was killed
// leaves: a FUSE mount without its server, which answers every access
// with "transport endpoint is not connected". It mounts FUSE and closes
// the device at once.
func DeadFUSEMount(t *testing.T, target string) {
	t.Helper()

	dev, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("failed to open the FUSE device: %v", err)
	}
	opts := fmt.Sprintf("fd=%d,rootmode=40000,user_id=0,group_id=0", dev.Fd())
	err = syscall.Mount("cvmfs2", target, "fuse", syscall.MS_NOSUID|syscall.MS_NODEV, opts)
	if cerr := dev.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("failed to mount FUSE on %s: %v", target, err)
	}
	if _, err := os.Stat(target); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("stat of the FUSE mount without a server on %s: %v, want %v", target, err, syscall.ENOTCONN)
	}
}
