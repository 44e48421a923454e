package publish

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/repository"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/unpack"
)

const testRepo = "unpacked.example.org"

// fakeServer puts a cvmfs_server on PATH that appends its arguments to a
// log and fails when its first argument is failOn. It returns the log.
func fakeServer(t *testing.T, failOn string) string {
	t.Helper()
	bin := t.TempDir()
	log := filepath.Join(t.TempDir(), "calls.log")
	script := "#!/bin/sh\n" +
		"echo \"$*\" >> " + log + "\n" +
		"if [ \"$1\" = \"" + failOn + "\" ]; then echo \"$1: repository is locked\" >&2; exit 1; fi\n"
	if err := os.WriteFile(filepath.Join(bin, ServerCommand), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	return log
}

// serverConf writes a server.conf with content and returns its config dir.
func serverConf(t *testing.T, content string) string {
	t.Helper()
	dir := t.TempDir()
	if content == "" {
		return dir
	}
	if err := os.MkdirAll(filepath.Join(dir, testRepo), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, testRepo, ServerConfName), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func calls(t *testing.T, log string) []string {
	t.Helper()
	data, err := os.ReadFile(log)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

func newManager(t *testing.T, configDir string) ReleaseManager {
	t.Helper()
	repo, err := repository.New("/cvmfs", testRepo, "layers")
	if err != nil {
		t.Fatal(err)
	}
	return ReleaseManager{Repo: repo, ConfigDir: configDir}
}

const xattrsOn = "CVMFS_REPOSITORY_NAME=" + testRepo + "\nCVMFS_INCLUDE_XATTRS=true\n"

// TestReleaseManagerCommands pins the exact command lines run on a release
// manager.
func TestReleaseManagerCommands(t *testing.T) {
	tests := []struct {
		name   string
		finish func(Change) error
		want   []string
	}{
		{"commit", func(c Change) error { return c.Commit(context.Background()) },
			[]string{"transaction " + testRepo, "publish " + testRepo}},
		{"abort", func(c Change) error { return c.Abort(context.Background()) },
			[]string{"transaction " + testRepo, "abort -f " + testRepo}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := fakeServer(t, "")
			m := newManager(t, serverConf(t, xattrsOn))
			change, err := m.Begin(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.finish(change); err != nil {
				t.Fatal(err)
			}
			if got := calls(t, log); strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("cvmfs_server calls %q, want %q", got, tt.want)
			}
		})
	}
}

func TestReleaseManagerAbortsEvenWhenCancelled(t *testing.T) {
	log := fakeServer(t, "")
	m := newManager(t, serverConf(t, xattrsOn))
	ctx, cancel := context.WithCancel(context.Background())
	change, err := m.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := change.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	if got := calls(t, log); len(got) != 2 || got[1] != "abort -f "+testRepo {
		t.Errorf("cvmfs_server calls %q, want the abort after cancel", got)
	}
}

// TestReleaseManagerRefusesWithoutXattrs checks that no transaction is
// opened on a repository that would drop extended attributes.
func TestReleaseManagerRefusesWithoutXattrs(t *testing.T) {
	tests := []struct {
		name    string
		conf    string
		wantErr error
	}{
		{"no server.conf", "", os.ErrNotExist},
		{"not set", "CVMFS_REPOSITORY_NAME=" + testRepo + "\n", ErrXattrsDisabled},
		{"false", "CVMFS_INCLUDE_XATTRS=false\n", ErrXattrsDisabled},
		{"commented out", "# CVMFS_INCLUDE_XATTRS=true\n", ErrXattrsDisabled},
		{"set then unset", "CVMFS_INCLUDE_XATTRS=true\nCVMFS_INCLUDE_XATTRS=false\n", ErrXattrsDisabled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := fakeServer(t, "")
			_, err := newManager(t, serverConf(t, tt.conf)).Begin(context.Background())
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Begin = %v, want %v", err, tt.wantErr)
			}
			if got := calls(t, log); len(got) != 0 {
				t.Errorf("cvmfs_server was run: %q", got)
			}
		})
	}
}

func TestConfValue(t *testing.T) {
	tests := []struct {
		conf      string
		wantValue string
		wantFound bool
	}{
		{"CVMFS_INCLUDE_XATTRS=true", "true", true},
		{`CVMFS_INCLUDE_XATTRS="true"`, "true", true},
		{"export CVMFS_INCLUDE_XATTRS=true # publish xattrs", "true", true},
		{"  CVMFS_INCLUDE_XATTRS = true", "true", true},
		{"CVMFS_INCLUDE_XATTRS_OTHER=true", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.conf, func(t *testing.T) {
			v, found := confValue([]byte(tt.conf), IncludeXattrsKey)
			if v != tt.wantValue || found != tt.wantFound {
				t.Errorf("confValue = %q, %v; want %q, %v", v, found, tt.wantValue, tt.wantFound)
			}
		})
	}
}

func TestReleaseManagerFailureShowsOutput(t *testing.T) {
	fakeServer(t, "transaction")
	_, err := newManager(t, serverConf(t, xattrsOn)).Begin(context.Background())
	if err == nil || !strings.Contains(err.Error(), "cvmfs_server transaction "+testRepo) ||
		!strings.Contains(err.Error(), "repository is locked") {
		t.Fatalf("Begin = %v, want an error with the command and its output", err)
	}
}

func TestWhiteoutFormats(t *testing.T) {
	if got := (Local{}).WhiteoutFormat(); got != unpack.Overlay {
		t.Errorf("Local writes %v, want overlay", got)
	}
	if got := (ReleaseManager{}).WhiteoutFormat(); got != unpack.AUFS {
		t.Errorf("ReleaseManager writes %v, want aufs", got)
	}
}

func TestLocalBeginOnReadOnlyParent(t *testing.T) {
	root := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(root, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	repo, err := repository.New(root, testRepo, "layers")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (Local{Repo: repo}).Begin(context.Background()); err == nil {
		t.Fatal("Begin below a file succeeded")
	}
}
