// Package cvmfstest runs the "internal" mount method in tests without
// CernVM-FS: it builds a stand-in for the client, the program in the cvmfs2
// directory below this one, which takes the client's command line and
// bind-mounts a local directory where the client would mount the
// repository. The plugin's own code, package cvmfs's Client included, runs
// unchanged; only the program it starts differs.
package cvmfstest

import (
	"bufio"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Environment variables the stand-in reads.
const (
	// SourceEnv names the directory that holds one directory per
	// repository, the files the stand-in mounts.
	SourceEnv = "CVMFS_STANDIN_SOURCE"
	// LogEnv names a file the stand-in appends each call to.
	LogEnv = "CVMFS_STANDIN_LOG"
)

// standInPackage is the stand-in's import path.
const standInPackage = "github.com/cvmfs-contrib/cvmfs-graphdriver/internal/cvmfs/cvmfstest/cvmfs2"

// Build builds the stand-in into a temporary directory of the test as
// cvmfs2 and returns its path. It needs the go command and runs inside
// this module, as `go test` does.
func Build(t testing.TB) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "cvmfs2")
	build(t, exec.Command("go", "build", "-o", out, standInPackage))
	return out
}

// BuildDynamic builds the stand-in as Build does, but linked by the C
// toolchain against the C library, as the real client is: copied into
// another root file system, it runs only if its shared libraries and the
// dynamic linker came along. It needs gcc, and fails the test unless the
// program it made names a dynamic linker.
func BuildDynamic(t testing.TB) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "cvmfs2")
	cmd := exec.Command("go", "build", "-ldflags=-linkmode=external", "-o", out, standInPackage)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	build(t, cmd)

	interp, err := Interpreter(out)
	if err != nil {
		t.Fatalf("failed to read the stand-in CernVM-FS client: %v", err)
	}
	if interp == "" {
		t.Fatalf("the stand-in CernVM-FS client %s was linked statically, want a dynamic executable", out)
	}
	return out
}

// Interpreter returns the dynamic linker that the program p names, or ""
// for a static program.
func Interpreter(p string) (string, error) {
	f, err := elf.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			b, err := io.ReadAll(prog.Open())
			if err != nil {
				return "", fmt.Errorf("failed to read the interpreter of %s: %w", p, err)
			}
			return strings.TrimRight(string(b), "\x00"), nil
		}
	}
	return "", nil
}

func build(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("failed to build the stand-in CernVM-FS client: %v\n%s", err, msg)
	}
}

// StandIn is a built stand-in client with its source and log.
type StandIn struct {
	// Binary is the stand-in cvmfs2.
	Binary string
	// Source holds the repositories, one directory each: what the client
	// would fetch from the servers.
	Source string
	// Log is the file the stand-in logs its calls to.
	Log string
}

// New readies the stand-in binary, as Build made it, for the test: with an
// empty source and log in temporary directories, and the test process's
// environment pointing at them, so that a client run from the test finds
// them.
func New(t testing.TB, binary string) *StandIn {
	t.Helper()
	s := &StandIn{
		Binary: binary,
		Source: t.TempDir(),
		Log:    filepath.Join(t.TempDir(), "cvmfs2.log"),
	}
	for _, kv := range s.Env() {
		name, value, _ := strings.Cut(kv, "=")
		t.Setenv(name, value)
	}
	return s
}

// Env returns the environment, as NAME=VALUE, that a process running the
// stand-in needs.
func (s *StandIn) Env() []string {
	return []string{SourceEnv + "=" + s.Source, LogEnv + "=" + s.Log}
}

// RepoDir returns the directory in the source that holds repository repo.
func (s *StandIn) RepoDir(repo string) string {
	return filepath.Join(s.Source, repo)
}

// Mounts returns the repositories the stand-in was asked to mount, in the
// order of the calls, failed calls included.
func (s *StandIn) Mounts(t testing.TB) []string {
	t.Helper()
	f, err := os.Open(s.Log)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	var repos []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		repo, _, _ := strings.Cut(sc.Text(), " ")
		repos = append(repos, repo)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return repos
}
