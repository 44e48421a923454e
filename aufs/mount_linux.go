package aufs

import (
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"runtime"
	"sort"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// kernelMounter makes the mount system calls for real.
type kernelMounter struct {
	// auplink is the path of the aufs-tools helper, empty when it is not
	// installed.
	auplink string
}

func newKernelMounter() kernelMounter {
	var m kernelMounter
	if p, err := exec.LookPath("auplink"); err == nil {
		m.auplink = p
	}
	return m
}

// Mount implements mounter.
func (m kernelMounter) Mount(source, target, fstype string, flags uintptr, data string) error {
	return unix.Mount(source, target, fstype, flags, data)
}

// Unmount implements mounter. Before a plain unmount it runs
// `auplink <target> flush` when aufs-tools are installed, as Docker's aufs
// driver did: aufs keeps the other names of a copied-up hard-linked file as
// pseudo-links that last only as long as the mount, and the flush makes
// them real links in the writable branch. The flush is best effort and its
// failure is not the unmount's: without it, those other names show the
// file's old content at the next mount, and nothing else is lost.
func (m kernelMounter) Unmount(target string, flags int) error {
	if flags == 0 && m.auplink != "" {
		_ = exec.Command(m.auplink, target, "flush").Run()
	}
	return unix.Unmount(target, flags)
}

// unmount unmounts target. A target that is not mounted is not an error; a
// busy one is detached, so that a lingering reference in another mount
// namespace does not fail the caller.
func (d *Driver) unmount(target string) error {
	err := d.mounter.Unmount(target, 0)
	switch {
	case err == nil, errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
		return nil
	case errors.Is(err, unix.EBUSY):
		if err := d.mounter.Unmount(target, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("failed to detach %s: %w", target, err)
		}
		return nil
	default:
		return fmt.Errorf("failed to unmount %s: %w", target, err)
	}
}

// unmountIfMounted unmounts target when the mount table shows a mount
// there, so that layers never mounted cost no unmount call.
func (d *Driver) unmountIfMounted(target string) error {
	mounted, err := mountinfo.Mounted(target)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("failed to check whether %s is mounted: %w", target, err)
	}
	if !mounted {
		return nil
	}
	return d.unmount(target)
}

// unmountAllBelow unmounts every mount strictly below dir, deepest first.
func (d *Driver) unmountAllBelow(dir string) error {
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
		if err := d.unmount(m.Mountpoint); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// inPrivateFS runs fn on an OS thread with a file system context (working
// directory, root, umask) of its own: umask 0, and dir as the working
// directory unless dir is empty. Unpacking a layer needs umask 0 to keep
// the modes the tar holds, and a mount with relative branch paths needs the
// home directory as working directory; neither may reach the threads that
// serve other calls meanwhile.
//
// fn must not hand file system work to other goroutines: they run on other
// threads, in the process's own context.
func inPrivateFS(dir string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// The thread stays locked: when the goroutine ends, the runtime
		// ends the thread and its private context with it.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- fmt.Errorf("failed to unshare the file system context: %w", err)
			return
		}
		unix.Umask(0)
		if dir != "" {
			if err := unix.Chdir(dir); err != nil {
				errc <- fmt.Errorf("failed to change directory to %s: %w", dir, err)
				return
			}
		}
		errc <- fn()
	}()
	return <-errc
}
