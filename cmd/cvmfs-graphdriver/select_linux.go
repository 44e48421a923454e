package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"strings"

	"golang.org/x/sys/unix"
)

// procFilesystems lists the file systems the running kernel serves.
const procFilesystems = "/proc/filesystems"

// hostKernel asks the running kernel.
type hostKernel struct {
	// filesystems is the file listing the kernel's file systems; empty
	// means procFilesystems.
	filesystems string
}

// Supports implements kernelFS. A missing file system is loaded with
// modprobe where there is one (a legacy plugin on the host), and otherwise
// by the kernel itself: a mount that names a file system type the kernel
// does not know makes it load the module "fs-<type>" with the host's
// modprobe, also for a process in a container, which needs neither
// /lib/modules nor CAP_SYS_MODULE for it. The mount made for that has no
// options and fails; should it ever succeed, it is undone at once.
func (k hostKernel) Supports(fs string) bool {
	if k.lists(fs) {
		return true
	}
	if modprobe, err := exec.LookPath("modprobe"); err == nil {
		// Its failure shows in the check that follows.
		_ = exec.Command(modprobe, "-q", fs).Run()
		if k.lists(fs) {
			return true
		}
	}
	autoload(fs)
	return k.lists(fs)
}

// lists reports whether the kernel's list of file systems names fs.
func (k hostKernel) lists(fs string) bool {
	path := k.filesystems
	if path == "" {
		path = procFilesystems
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 0 && fields[len(fields)-1] == fs {
			return true
		}
	}
	return false
}

// autoload makes the kernel load the module of file system fs by naming it
// in a mount on an empty temporary directory.
func autoload(fs string) {
	dir, err := os.MkdirTemp("", "cvmfs-graphdriver-probe-")
	if err != nil {
		return
	}
	defer os.Remove(dir)

	if err := unix.Mount("none", dir, fs, unix.MS_RDONLY|unix.MS_NODEV|unix.MS_NOSUID|unix.MS_NOEXEC, ""); err == nil {
		_ = unix.Unmount(dir, unix.MNT_DETACH)
	}
}
