package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// socketDir returns a directory whose paths fit a unix socket address,
// which t.TempDir cannot promise.
func socketDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "gd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func TestListenSocket(t *testing.T) {
	t.Run("creates the directory", func(t *testing.T) {
		path := filepath.Join(socketDir(t), "plugins", "cvmfs.sock")

		s, err := listenSocket(path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()

		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o660 {
			t.Errorf("socket mode %o, want 660", perm)
		}
	})

	t.Run("replaces a stale socket", func(t *testing.T) {
		path := filepath.Join(socketDir(t), "cvmfs.sock")
		stale, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		// Closing the listener without removing the file leaves what a
		// killed plugin leaves.
		stale.(*net.UnixListener).SetUnlinkOnClose(false)
		stale.Close()

		s, err := listenSocket(path)
		if err != nil {
			t.Fatalf("over a stale socket: %v", err)
		}
		s.Close()
	})

	t.Run("refuses a live socket", func(t *testing.T) {
		path := filepath.Join(socketDir(t), "cvmfs.sock")
		live, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer live.Close()

		_, err = listenSocket(path)
		if err == nil || !strings.Contains(err.Error(), "another process is serving on "+path) {
			t.Fatalf("got %v, want a refusal", err)
		}
		if _, err := os.Stat(path); err != nil {
			t.Errorf("live socket is gone: %v", err)
		}
	})

	t.Run("refuses a file that is not a socket", func(t *testing.T) {
		path := filepath.Join(socketDir(t), "cvmfs.sock")
		if err := os.WriteFile(path, []byte("keep"), 0o600); err != nil {
			t.Fatal(err)
		}

		_, err := listenSocket(path)
		if err == nil || !strings.Contains(err.Error(), "is not a socket") {
			t.Fatalf("got %v, want a refusal", err)
		}
	})
}

func TestSocketClose(t *testing.T) {
	t.Run("removes its socket", func(t *testing.T) {
		path := filepath.Join(socketDir(t), "cvmfs.sock")
		s, err := listenSocket(path)
		if err != nil {
			t.Fatal(err)
		}

		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(path); !os.IsNotExist(err) {
			t.Errorf("socket still there: %v", err)
		}
	})

	t.Run("keeps a socket that replaced it", func(t *testing.T) {
		path := filepath.Join(socketDir(t), "cvmfs.sock")
		s, err := listenSocket(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		other, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()

		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(path); err != nil {
			t.Errorf("the other socket is gone: %v", err)
		}
	})
}
