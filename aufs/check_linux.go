package aufs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrNotSupported is matched, through errors.Is, by the error Supported and
// New return on a kernel without aufs.
var ErrNotSupported = errors.New("the kernel does not support aufs")

// notSupportedError says, in one sentence, that the kernel lacks aufs, why
// the backend thinks so, and what to use instead.
type notSupportedError struct {
	detail string
}

func (e *notSupportedError) Error() string {
	return fmt.Sprintf("the kernel does not support aufs (not in /proc/filesystems and modprobe aufs failed: %s); use the overlay2 backend",
		e.detail)
}

func (e *notSupportedError) Is(target error) bool { return target == ErrNotSupported }

// Kernel facts the backend reads.
const (
	procFilesystems = "/proc/filesystems"
	// sysAufsConfig lists the options aufs was built with; it exists only
	// when aufs is a module.
	sysAufsConfig = "/sys/fs/aufs/config"
	// defaultMaxBranches is the branch limit of an aufs built with the
	// default configuration (CONFIG_AUFS_BRANCH_MAX_127).
	defaultMaxBranches = 127
	// shmDir is where the xino file goes when it is a tmpfs.
	shmDir      = "/dev/shm"
	xinoName    = "aufs.xino"
	tmpfsMagic  = 0x01021994
	modprobeCmd = "modprobe"
)

// kernel is what the backend knows about the kernel's aufs, learned once
// when the driver starts.
type kernel struct {
	// maxBranches is the most branches one aufs mount takes.
	maxBranches int
	// xino is the file aufs keeps its inode translation table in, on a
	// local file system; empty lets aufs choose.
	xino string
	// pageSize bounds the option string of each mount call.
	pageSize int
	// dirperm1 says whether aufs accepts the dirperm1 option; the driver
	// finds out with a test mount.
	dirperm1 bool
	// backingFS names the file system holding the home directory.
	backingFS string
}

// Supported returns nil when the running kernel can mount aufs. When
// /proc/filesystems does not list aufs it runs `modprobe aufs` and looks
// again; if aufs is still missing, the error matches ErrNotSupported and
// says in one sentence what was tried and what to use instead.
func Supported() error {
	return supported(procFilesystems, modprobeCmd)
}

func supported(filesystems, modprobe string) error {
	if listsFilesystem(filesystems, "aufs") {
		return nil
	}
	var detail string
	if path, err := exec.LookPath(modprobe); err != nil {
		detail = err.Error()
	} else {
		out, err := exec.Command(path, "aufs").CombinedOutput()
		if listsFilesystem(filesystems, "aufs") {
			return nil
		}
		detail = strings.Join(strings.Fields(string(out)), " ")
		switch {
		case detail != "":
		case err != nil:
			detail = err.Error()
		default:
			detail = "it succeeded, yet aufs is still not listed"
		}
	}
	return &notSupportedError{detail: detail}
}

// listsFilesystem reports whether the file systems list at path (the format
// of /proc/filesystems) names fs.
func listsFilesystem(path, fs string) bool {
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

// detectKernel reads what the kernel tells about its aufs without mounting
// anything.
func detectKernel() kernel {
	return kernel{
		maxBranches: readMaxBranches(sysAufsConfig),
		xino:        localXino(shmDir),
		pageSize:    os.Getpagesize(),
	}
}

var branchMaxOption = regexp.MustCompile(`(?m)^CONFIG_AUFS_BRANCH_MAX_([0-9]+)=y\s*$`)

// readMaxBranches returns the branch limit aufs was built with, as the
// config file at path lists it, or the default limit when it cannot tell.
func readMaxBranches(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return defaultMaxBranches
	}
	m := branchMaxOption.FindSubmatch(data)
	if m == nil {
		return defaultMaxBranches
	}
	n, err := strconv.Atoi(string(m[1]))
	if err != nil || n < 2 {
		return defaultMaxBranches
	}
	return n
}

// localXino returns the xino file to use: one in dir when dir is a tmpfs,
// as Docker's aufs driver put it in /dev/shm, and otherwise none, leaving
// aufs its default.
func localXino(dir string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil || int64(st.Type) != tmpfsMagic {
		return ""
	}
	return filepath.Join(dir, xinoName)
}

// File system magic numbers (statfs f_type) of the backing file systems the
// backend names or refuses.
var fsNames = map[int64]string{
	0xEF53:     "extfs",
	0x58465342: "xfs",
	0x9123683E: "btrfs",
	tmpfsMagic: "tmpfs",
	0x794C7630: "overlayfs",
	0x61756673: "aufs",
	0x2FC12FC1: "zfs",
	0x6969:     "nfs",
	0xF15F:     "ecryptfs",
	0x65735546: "fuse",
	0x73717368: "squashfs",
}

// unsupportedBacking are the file systems Docker's aufs driver refused to
// keep branches on.
var unsupportedBacking = map[string]bool{
	"aufs":     true,
	"btrfs":    true,
	"ecryptfs": true,
}

// checkBackingFS names the file system holding home and refuses the ones
// aufs branches do not work on.
func (d *Driver) checkBackingFS() error {
	var st unix.Statfs_t
	if err := unix.Statfs(d.home, &st); err != nil {
		return fmt.Errorf("failed to inspect the file system of %s: %w", d.home, err)
	}
	name, ok := fsNames[int64(st.Type)]
	if !ok {
		name = fmt.Sprintf("unknown (magic %#x)", st.Type)
	}
	d.kernel.backingFS = name
	if unsupportedBacking[name] {
		return fmt.Errorf("the %s backend cannot keep layers in %s: it is on %s, which aufs branches do not work on; give dockerd a --data-root on ext4 or xfs",
			Name, d.home, name)
	}
	return nil
}

// detectDirperm1 finds out, with a test mount in home, whether the kernel's
// aufs accepts the dirperm1 option, which older aufs versions lack. When it
// does not, a mount without the option tells an older aufs from one that
// cannot mount branches in home at all, which fails the driver now rather
// than at the first container.
func (d *Driver) detectDirperm1() (retErr error) {
	tmp, err := os.MkdirTemp(d.home, tempPrefix+"dirperm1-")
	if err != nil {
		return fmt.Errorf("failed to check aufs: %w", err)
	}
	union := filepath.Join(tmp, "union")
	for _, dir := range []string{filepath.Join(tmp, "base"), union} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			os.RemoveAll(tmp)
			return fmt.Errorf("failed to check aufs: %w", err)
		}
	}
	mounted := false
	defer func() {
		if mounted {
			if err := d.unmount(union); err != nil {
				// The test branch stays rather than be emptied through
				// a mount; the next start removes it.
				retErr = errors.Join(retErr, err)
				return
			}
		}
		os.RemoveAll(tmp)
	}()

	probe := func(opts ...string) error {
		if d.kernel.xino != "" {
			opts = append(opts, "xino="+d.kernel.xino)
		}
		data := strings.Join(append([]string{"br:base=rw"}, opts...), ",")
		return inPrivateFS(tmp, func() error {
			if err := d.mounter.Mount("none", union, "aufs", 0, data); err != nil {
				return &MountError{Source: "none", Target: union, FSType: "aufs", Data: data, Dir: tmp, Err: err}
			}
			return nil
		})
	}
	if err := probe("dirperm1"); err == nil {
		mounted = true
		d.kernel.dirperm1 = true
		return nil
	}
	if err := probe(); err != nil {
		return fmt.Errorf("the kernel's aufs cannot mount a branch in %s: %w", d.home, err)
	}
	mounted = true
	return nil
}
