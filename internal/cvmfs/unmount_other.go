//go:build !linux

package cvmfs

import "errors"

// unmount is not supported: CernVM-FS clients run on Linux.
func unmount(string) error {
	return errors.New("unmounting CernVM-FS repositories is only supported on Linux")
}
