package cvmfs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/moby/sys/mountinfo"
)

// outputWaitDelay bounds the wait for a command's output after it exits.
const outputWaitDelay = 5 * time.Second

// Mounter mounts and unmounts CernVM-FS repositories below a root
// directory.
type Mounter interface {
	// Mount mounts repository repo, ready to read when it returns.
	Mount(repo string) error
	// Unmount unmounts repository repo. A repository that is not mounted
	// is not an error.
	Unmount(repo string) error
	// Mounted reports whether something is mounted where repository repo
	// goes.
	Mounted(repo string) (bool, error)
}

// Default names and settings of the client.
const (
	// DefaultBinary is the CernVM-FS client.
	DefaultBinary = "cvmfs2"
	// DefaultTalk is the client's control tool.
	DefaultTalk = "cvmfs_talk"
	// DefaultRoot is where repositories are mounted.
	DefaultRoot = "/cvmfs"
)

// baseOptions are the mount options mount.cvmfs gives every client; the
// package documentation says why each is there.
var baseOptions = []string{"rw", "system_mount", "fsname=cvmfs2", "allow_other", "grab_mountpoint"}

// Client mounts repositories by running the CernVM-FS client. The zero
// value is not usable: set at least UID and GID, the ids of the "cvmfs"
// user the client runs as.
type Client struct {
	// Root is the directory the repositories are mounted below;
	// DefaultRoot when empty.
	Root string
	// Binary and Talk are the client and its control tool, looked up in
	// PATH unless they hold a slash; DefaultBinary and DefaultTalk when
	// empty.
	Binary string
	Talk   string
	// UID and GID are the ids the client drops to.
	UID, GID int
	// Options are more -o options, such as "libfuse=3".
	Options []string
}

// Mountpoint returns where repository repo is mounted.
func (c *Client) Mountpoint(repo string) string {
	root := c.Root
	if root == "" {
		root = DefaultRoot
	}
	return filepath.Join(root, repo)
}

// Args returns the command line that mounts repository repo, program
// first.
func (c *Client) Args(repo string) []string {
	opts := append(append([]string(nil), baseOptions...),
		"uid="+strconv.Itoa(c.UID), "gid="+strconv.Itoa(c.GID))
	opts = append(opts, c.Options...)
	return []string{orDefault(c.Binary, DefaultBinary), "-o", strings.Join(opts, ","), repo, c.Mountpoint(repo)}
}

// Mount implements Mounter: it creates the mount point and runs the
// client, which returns once the repository is mounted. Its output is part
// of the error when it fails.
func (c *Client) Mount(repo string) error {
	if err := ValidateRepository(repo); err != nil {
		return err
	}
	target := c.Mountpoint(repo)
	if err := os.MkdirAll(target, 0o755); err != nil {
		return fmt.Errorf("failed to create mount point of repository %s: %w", repo, err)
	}
	if err := run(c.Args(repo)); err != nil {
		return fmt.Errorf("failed to mount repository %s on %s: %w", repo, target, err)
	}
	return nil
}

// Unmount implements Mounter.
func (c *Client) Unmount(repo string) error {
	if err := ValidateRepository(repo); err != nil {
		return err
	}
	if err := unmount(c.Mountpoint(repo)); err != nil {
		return fmt.Errorf("failed to unmount repository %s: %w", repo, err)
	}
	return nil
}

// Mounted implements Mounter: it reports whether the mount point of
// repository repo is a mount point. A mount point that does not exist is
// not mounted. A mount whose client is gone, which answers every access
// with "transport endpoint is not connected", is detached and reported as
// not mounted, so that it gets mounted again: layers mounted on it before
// keep their broken view, new ones get a working repository.
func (c *Client) Mounted(repo string) (bool, error) {
	if err := ValidateRepository(repo); err != nil {
		return false, err
	}
	target := c.Mountpoint(repo)
	mounted, err := mountinfo.Mounted(target)
	if deadMount(err) {
		if err := detach(target); err != nil {
			return false, fmt.Errorf("failed to detach the mount of repository %s on %s, whose client is gone: %w",
				repo, target, err)
		}
		return false, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("failed to check whether repository %s is mounted on %s: %w", repo, target, err)
	}
	return mounted, nil
}

// Remount makes the client of repository repo serve the newest published
// revision now and waits until it does.
func (c *Client) Remount(repo string) error {
	if err := ValidateRepository(repo); err != nil {
		return err
	}
	if err := run([]string{orDefault(c.Talk, DefaultTalk), "-i", repo, "remount", "sync"}); err != nil {
		return fmt.Errorf("failed to remount repository %s: %w", repo, err)
	}
	return nil
}

// run runs argv and returns an error holding its output if it fails.
func run(argv []string) error {
	var out bytes.Buffer
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = &out
	cmd.Stderr = &out
	// The client forks into the background once the repository is
	// mounted; should its background half keep the output open, the
	// wait for the output ends this long after the foreground half exits.
	cmd.WaitDelay = outputWaitDelay
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String())
		if msg == "" {
			return fmt.Errorf("%s: %w", argv[0], err)
		}
		return fmt.Errorf("%s: %w: %s", argv[0], err, msg)
	}
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// errBadRepository marks a repository name that cannot be mounted.
var errBadRepository = errors.New("invalid repository name")

// ValidateRepository accepts host-like repository names (letters, digits,
// '.', '-', '_'), which is what CernVM-FS repositories are called, and
// refuses anything that would leave the root or read as an option.
func ValidateRepository(repo string) error {
	if repo == "" || repo == "." || repo == ".." || strings.HasPrefix(repo, "-") || strings.HasPrefix(repo, ".") {
		return fmt.Errorf("%w %q", errBadRepository, repo)
	}
	for _, r := range repo {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
		default:
			return fmt.Errorf("%w %q: character %q is not allowed", errBadRepository, repo, r)
		}
	}
	return nil
}
