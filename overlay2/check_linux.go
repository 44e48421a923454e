package overlay2

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	continuityfs "github.com/containerd/continuity/fs"
	"golang.org/x/sys/unix"
)

// features are the kernel and file system facts the backend depends on,
// detected once when the driver starts.
type features struct {
	backingFS string
	dType     bool
	// naiveDiff is set when the upper directory cannot be trusted to
	// describe a layer's changes, even with mountOptions.
	naiveDiff bool
	// mountOptions are added to every overlay mount.
	mountOptions []string
}

// File system magic numbers (statfs f_type) of the backing file systems the
// backend names or refuses.
var fsNames = map[int64]string{
	0xEF53:     "extfs",
	0x58465342: "xfs",
	0x9123683E: "btrfs",
	0x01021994: "tmpfs",
	0x794C7630: "overlayfs",
	0x61756673: "aufs",
	0x2FC12FC1: "zfs",
	0x6969:     "nfs",
	0xF15F:     "ecryptfs",
	0x65735546: "fuse",
	0x73717368: "squashfs",
	0x5346544E: "ntfs",
	0x4244:     "hfs",
	0xFF534D42: "cifs",
}

// unsupportedBacking are backing file systems on which an overlay upper
// directory does not work or loses data, as Docker's overlay2 also finds.
var unsupportedBacking = map[string]bool{
	"overlayfs": true,
	"aufs":      true,
	"zfs":       true,
	"nfs":       true,
	"ecryptfs":  true,
}

// detectFeatures checks that home can hold overlay2 layers and learns how to
// mount them.
func detectFeatures(home string) (features, error) {
	var f features
	if err := supportsOverlay(); err != nil {
		return f, err
	}

	var st unix.Statfs_t
	if err := unix.Statfs(home, &st); err != nil {
		return f, fmt.Errorf("failed to inspect the file system of %s: %w", home, err)
	}
	name, ok := fsNames[int64(st.Type)]
	if !ok {
		name = fmt.Sprintf("unknown (magic %#x)", st.Type)
	}
	f.backingFS = name
	if unsupportedBacking[name] {
		return f, fmt.Errorf("the %s backend cannot keep layers in %s: it is on %s, which cannot hold an overlay upper directory; give dockerd a --data-root on ext4 or xfs",
			Name, home, name)
	}

	dType, err := continuityfs.SupportsDType(home)
	if err != nil {
		return f, fmt.Errorf("failed to check d_type support of %s: %w", home, err)
	}
	f.dType = dType
	if !dType {
		return f, fmt.Errorf("the %s file system holding %s does not report file types in directory entries (d_type), which overlay needs; an xfs file system must be made with ftype=1",
			name, home)
	}

	f.naiveDiff, f.mountOptions, err = checkDiffOptions(home)
	if err != nil {
		return f, err
	}
	return f, nil
}

// supportsOverlay checks that the kernel knows the overlay file system,
// loading its module if needed.
func supportsOverlay() error {
	if hasFilesystem("overlay") {
		return nil
	}
	out, err := exec.Command("modprobe", "overlay").CombinedOutput()
	if hasFilesystem("overlay") {
		return nil
	}
	detail := strings.TrimSpace(string(out))
	if err != nil && detail == "" {
		detail = err.Error()
	}
	return fmt.Errorf("the kernel does not support the overlay file system and modprobe overlay failed (%s); load the overlay module or use the aufs backend", detail)
}

// hasFilesystem reports whether /proc/filesystems lists name.
func hasFilesystem(name string) bool {
	data, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		return false
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 0 && fields[len(fields)-1] == name {
			return true
		}
	}
	return false
}

// checkDiffOptions finds mount options under which a layer's upper
// directory describes its changes exactly. With redirect_dir, overlay
// records a renamed directory as a redirect instead of copying it up; with
// metacopy, a metadata change copies up only the metadata. Either makes the
// upper directory an incomplete diff. The check mounts a small overlay in
// home and looks at what the kernel does by default; when it is unsafe, the
// same check runs with both features turned off. Only when that is
// refused too must diffs be computed by comparing whole trees.
func checkDiffOptions(home string) (naive bool, opts []string, err error) {
	safe, err := diffIsSafe(home, nil)
	if err != nil {
		return false, nil, err
	}
	if safe {
		return false, nil, nil
	}
	for _, try := range [][]string{{"redirect_dir=off", "metacopy=off"}, {"redirect_dir=off"}} {
		safe, err := diffIsSafe(home, try)
		if err == nil && safe {
			return false, try, nil
		}
	}
	return true, nil, nil
}

// diffIsSafe mounts a test overlay with the given extra options, renames a
// directory and changes a file's mode through it, and reports whether the
// upper directory then holds plain copies. A mount refused because of the
// options is reported as an error.
func diffIsSafe(home string, extra []string) (_ bool, retErr error) {
	tmp, err := os.MkdirTemp(home, tempPrefix+"check-")
	if err != nil {
		return false, fmt.Errorf("failed to check overlay: %w", err)
	}
	defer os.RemoveAll(tmp)
	for _, d := range []string{"lower/dir", "upper", "work", "merged"} {
		if err := os.MkdirAll(filepath.Join(tmp, d), 0o755); err != nil {
			return false, fmt.Errorf("failed to check overlay: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, "lower", "file"), []byte("x"), 0o644); err != nil {
		return false, fmt.Errorf("failed to check overlay: %w", err)
	}

	merged := filepath.Join(tmp, "merged")
	data := strings.Join(append([]string{"lowerdir=lower", "upperdir=upper", "workdir=work"}, extra...), ",")
	if err := mountOverlay(tmp, merged, data, true); err != nil {
		return false, fmt.Errorf("failed to mount a test overlay in %s: %w", home, err)
	}
	defer func() {
		if err := unmount(merged); err != nil && retErr == nil {
			retErr = err
		}
	}()

	if err := os.Rename(filepath.Join(merged, "dir"), filepath.Join(merged, "dir2")); err != nil && !errors.Is(err, unix.EXDEV) {
		return false, fmt.Errorf("failed to rename a directory in a test overlay: %w", err)
	}
	if err := os.Chmod(filepath.Join(merged, "file"), 0o600); err != nil {
		return false, fmt.Errorf("failed to change a file in a test overlay: %w", err)
	}
	upper := filepath.Join(tmp, "upper")
	for _, probe := range []struct{ path, xattr string }{
		{filepath.Join(upper, "dir2"), "trusted.overlay.redirect"},
		{filepath.Join(upper, "file"), "trusted.overlay.metacopy"},
	} {
		if _, err := unix.Lgetxattr(probe.path, probe.xattr, nil); err == nil {
			return false, nil
		}
	}
	return true, nil
}
