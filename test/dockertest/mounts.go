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
