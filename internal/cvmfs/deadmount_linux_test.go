package cvmfs

import (
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// deadFUSEMount mounts a FUSE file system on target and closes its device
// at once, which leaves what a killed client leaves: a mount that answers
// every access with ENOTCONN.
func deadFUSEMount(t *testing.T, target string) {
	t.Helper()

	dev, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no FUSE device: %v", err)
	}
	opts := fmt.Sprintf("fd=%d,rootmode=40000,user_id=0,group_id=0", dev.Fd())
	err = unix.Mount("cvmfs2", target, "fuse", unix.MS_NOSUID|unix.MS_NODEV, opts)
	if cerr := dev.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("failed to mount FUSE on %s: %v", target, err)
	}
}
