//go:build !linux

package cvmfs

import "errors"

// unmount is not supported: CernVM-FS clients run on Linux.
func unmount(string) error {
	return errors.New("unmounting CernVM-FS repositories is only supported on Linux")
}

// deadMount reports no mount as dead: there are no mounts to check.
func deadMount(error) bool { return false }

// detach is not supported, as unmount is not.
func detach(string) error { return unmount("") }
