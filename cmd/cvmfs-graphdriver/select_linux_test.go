package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestHostKernelLists(t *testing.T) {
	list := filepath.Join(t.TempDir(), "filesystems")
	content := "nodev\tsysfs\nnodev\toverlay\n\text4\nnodev\tfuse\n"
	if err := os.WriteFile(list, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	k := hostKernel{filesystems: list}
	for fs, want := range map[string]bool{"overlay": true, "ext4": true, "fuse": true, "aufs": false, "nodev": false} {
		if got := k.lists(fs); got != want {
			t.Errorf("lists(%q) = %v, want %v", fs, got, want)
		}
	}
}

// TestHostKernelSupportsUnknown asks the running kernel for a file system
// no kernel has: the answer is no, and the attempt to load it leaves no
// mount and no directory behind.
func TestHostKernelSupportsUnknown(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the kernel loads file system modules only for a mount that root asks for")
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)

	if (hostKernel{}).Supports("cvmfsgdtestfs") {
		t.Fatal("the kernel claims to support a file system that does not exist")
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left in the temporary directory: %s", e.Name())
	}
}
