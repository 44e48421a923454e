package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer that a test can read while a server
// writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// noEnv is a getenv for an empty environment.
func noEnv(string) string { return "" }

func TestRunVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"--version"}, noEnv, &stdout, &stderr)
	if code != 0 || stdout.String() != "cvmfs-graphdriver dev\n" {
		t.Errorf("got exit %d and %q, want 0 and %q", code, stdout.String(), "cvmfs-graphdriver dev\n")
	}
}

func TestRunBadBackend(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"--backend", "zfs"}, noEnv, &stdout, &stderr)
	want := "cvmfs-graphdriver: unknown backend \"zfs\": valid backends are " + strings.Join(validBackends(), ", ") + "\n"
	if code != 2 || stderr.String() != want {
		t.Errorf("got exit %d and %q, want 2 and %q", code, stderr.String(), want)
	}
}

// TestRunHoldsOnError checks that with --hold-on-error a bad setting is
// reported at once and the exit waits for the stop signal.
func TestRunHoldsOnError(t *testing.T) {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var stdout, stderr syncBuffer
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, []string{"--hold-on-error", "--commit-mode", "publish"}, noEnv, &stdout, &stderr)
	}()

	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(stderr.String(), `commit mode "publish" is not implemented`) {
		if time.Now().After(deadline) {
			t.Fatalf("no error reported; stderr: %q", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case code := <-exited:
		t.Fatalf("exited with %d before it was stopped", code)
	case <-time.After(100 * time.Millisecond):
	}

	stop()
	select {
	case code := <-exited:
		if code != 2 {
			t.Errorf("exit status %d, want 2", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("did not exit when stopped")
	}
	if n := strings.Count(stderr.String(), "\n"); n != 1 {
		t.Errorf("stderr holds %d lines, want the one error:\n%s", n, stderr.String())
	}
}

// TestRunServes starts the plugin, calls it over its socket and stops it
// as SIGTERM would.
func TestRunServes(t *testing.T) {
	sock := filepath.Join(socketDir(t), "cvmfs.sock")
	stateDir := t.TempDir()
	missingRoot := filepath.Join(t.TempDir(), "cvmfs")

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var stdout, stderr syncBuffer
	exited := make(chan int, 1)
	go func() {
		args := []string{"--socket", sock, "--state-dir", stateDir, "--cvmfs-root", missingRoot}
		exited <- run(ctx, args, noEnv, &stdout, &stderr)
	}()

	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	defer client.CloseIdleConnections()

	post := func(path string) (int, string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			body := strings.NewReader(`{"ID":"l1"}`)
			resp, err := client.Post("http://plugin"+path, "application/json", body)
			if err == nil {
				defer resp.Body.Close()
				body, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				return resp.StatusCode, string(body)
			}
			if time.Now().After(deadline) {
				t.Fatalf("plugin does not answer on %s: %v\nstderr: %s", sock, err, stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	status, body := post("/Plugin.Activate")
	if status != http.StatusOK || !strings.Contains(body, `"GraphDriver"`) {
		t.Errorf("Activate: got %d %s", status, body)
	}
	status, body = post("/GraphDriver.Get")
	if status != http.StatusInternalServerError || !strings.Contains(body, "never initialised") {
		t.Errorf("Get before Init: got %d %s", status, body)
	}

	stop()
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("exit status %d, want 0\nstderr: %s", code, stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("plugin did not stop")
	}

	if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}
	// The missing CernVM-FS root is a warning on stdout; the failed Get is
	// an error on stderr.
	out, errOut := stdout.String(), stderr.String()
	if !strings.Contains(out, "level=warning") || !strings.Contains(out, missingRoot) {
		t.Errorf("no warning about the CernVM-FS root in stdout:\n%s", out)
	}
	if !strings.Contains(errOut, "level=error") || !strings.Contains(errOut, "method=GraphDriver.Get") {
		t.Errorf("no error for the failed Get in stderr:\n%s", errOut)
	}
}
