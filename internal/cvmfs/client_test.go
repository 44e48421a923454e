package cvmfs

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeScript stands in for cvmfs2 and cvmfs_talk: it appends its name and
// arguments, one per line, to $FAKE_CVMFS_LOG, fails when
// $FAKE_CVMFS_FAIL is set, and mounts a tmpfs on its last argument when
// $FAKE_CVMFS_MOUNT is set, as the real client mounts the repository.
const fakeScript = `#!/bin/sh
{ echo "$(basename "$0")"; for a in "$@"; do echo "$a"; done; echo "--"; } >>"$FAKE_CVMFS_LOG"
if [ -n "$FAKE_CVMFS_FAIL" ]; then
  echo "Failed to initialize root file catalog (16 - file catalog failure)" >&2
  exit 1
fi
if [ -n "$FAKE_CVMFS_MOUNT" ]; then
  for last in "$@"; do :; done
  mount -t tmpfs -o size=1m cvmfs2 "$last" || exit 1
fi
`

// fakeTools puts fake cvmfs2 and cvmfs_talk first in PATH and returns the
// file their calls are logged to.
func fakeTools(t *testing.T) string {
	t.Helper()

	bin := t.TempDir()
	for _, name := range []string{DefaultBinary, DefaultTalk} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(fakeScript), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	log := filepath.Join(t.TempDir(), "calls")
	t.Setenv("FAKE_CVMFS_LOG", log)
	t.Setenv("FAKE_CVMFS_FAIL", "")
	t.Setenv("FAKE_CVMFS_MOUNT", "")
	return log
}

// calls returns the logged calls, each as program and arguments.
func calls(t *testing.T, log string) [][]string {
	t.Helper()

	data, err := os.ReadFile(log)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var all [][]string
	var cur []string
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if line == "--" {
			all = append(all, cur)
			cur = nil
			continue
		}
		cur = append(cur, line)
	}
	return all
}

func TestClientMount(t *testing.T) {
	log := fakeTools(t)
	root := filepath.Join(t.TempDir(), "cvmfs")
	c := &Client{Root: root, UID: 123, GID: 456, Options: []string{"libfuse=3"}}

	if err := c.Mount("unpacked.cern.ch"); err != nil {
		t.Fatal(err)
	}

	want := [][]string{{"cvmfs2", "-o",
		"rw,system_mount,fsname=cvmfs2,allow_other,grab_mountpoint,uid=123,gid=456,libfuse=3",
		"unpacked.cern.ch", filepath.Join(root, "unpacked.cern.ch")}}
	if got := calls(t, log); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("ran %q, want %q", got, want)
	}
	if fi, err := os.Stat(filepath.Join(root, "unpacked.cern.ch")); err != nil || !fi.IsDir() {
		t.Errorf("mount point not created: %v", err)
	}
}

func TestClientMountFails(t *testing.T) {
	fakeTools(t)
	t.Setenv("FAKE_CVMFS_FAIL", "1")
	root := t.TempDir()
	c := &Client{Root: root}

	err := c.Mount("unpacked.cern.ch")
	if err == nil {
		t.Fatal("mount succeeded although cvmfs2 failed")
	}
	for _, want := range []string{"unpacked.cern.ch", filepath.Join(root, "unpacked.cern.ch"),
		"exit status 1", "Failed to initialize root file catalog"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestClientRemount(t *testing.T) {
	log := fakeTools(t)
	c := &Client{}

	if err := c.Remount("unpacked.cern.ch"); err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"cvmfs_talk", "-i", "unpacked.cern.ch", "remount", "sync"}}
	if got := calls(t, log); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("ran %q, want %q", got, want)
	}
}

func TestClientRefusesBadNames(t *testing.T) {
	log := fakeTools(t)
	c := &Client{Root: t.TempDir()}

	for _, repo := range []string{"", ".", "..", "../etc", "a/b", "-o", ".hidden", "repo name", "répo"} {
		t.Run(repo, func(t *testing.T) {
			for name, call := range map[string]func(string) error{
				"Mount": c.Mount, "Unmount": c.Unmount, "Remount": c.Remount,
			} {
				if err := call(repo); !errors.Is(err, errBadRepository) {
					t.Errorf("%s(%q) = %v, want an invalid name error", name, repo, err)
				}
			}
		})
	}
	if got := calls(t, log); len(got) > 0 {
		t.Errorf("ran %q for invalid names", got)
	}
}

// TestClientUnmount mounts through a fake client that mounts a tmpfs, and
// unmounts with the real system call.
func TestClientUnmount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	fakeTools(t)
	t.Setenv("FAKE_CVMFS_MOUNT", "1")
	root := t.TempDir()
	c := &Client{Root: root}
	target := c.Mountpoint("unpacked.cern.ch")

	if err := c.Mount("unpacked.cern.ch"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unmount(target) })
	if !isMounted(t, target) {
		t.Fatalf("%s is not mounted after Mount", target)
	}

	if err := c.Unmount("unpacked.cern.ch"); err != nil {
		t.Fatal(err)
	}
	if isMounted(t, target) {
		t.Errorf("%s is still mounted after Unmount", target)
	}
	if err := c.Unmount("unpacked.cern.ch"); err != nil {
		t.Errorf("Unmount of a repository that is not mounted: %v", err)
	}
}

// isMounted reports whether the mount table lists dir as a mount point.
func isMounted(t *testing.T, dir string) bool {
	t.Helper()

	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if fields := strings.Fields(line); len(fields) > 4 && fields[4] == dir {
			return true
		}
	}
	return false
}
