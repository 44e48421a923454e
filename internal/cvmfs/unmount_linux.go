package cvmfs

import (
	"errors"

	"golang.org/x/sys/unix"
)

// unmount unmounts target; a target that is not a mount point, or does
// not exist, is left as it is.
func unmount(target string) error {
	err := unix.Unmount(target, 0)
	if err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}

// deadMount tells whether err is what a FUSE mount answers once its
// server, the client, has exited or was killed.
func deadMount(err error) bool {
	return errors.Is(err, unix.ENOTCONN) || errors.Is(err, unix.ECONNABORTED)
}

// detach detaches the mount on target lazily: a dead mount cannot be
// unmounted while overlay mounts still use it as a lower layer.
func detach(target string) error {
	return unix.Unmount(target, unix.MNT_DETACH)
}
