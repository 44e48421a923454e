package cvmfstest

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// DeadMount leaves on target what a CernVM-FS client that was killed
// leaves: a FUSE mount without its server, which answers every access with
// "transport endpoint is not connected". It mounts FUSE and closes the
// device at once, and fails the test unless the mount then answers so.
func DeadMount(t testing.TB, target string) {
	t.Helper()

	dev, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("failed to open the FUSE device: %v", err)
	}
	opts := fmt.Sprintf("fd=%d,rootmode=40000,user_id=0,group_id=0", dev.Fd())
	err = unix.Mount("cvmfs2", target, "fuse", unix.MS_NOSUID|unix.MS_NODEV, opts)
	if cerr := dev.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("failed to mount FUSE on %s: %v", target, err)
	}
	if _, err := os.Stat(target); !errors.Is(err, unix.ENOTCONN) {
		t.Fatalf("stat of the FUSE mount without a server on %s: %v, want %v", target, err, unix.ENOTCONN)
	}
}
