package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/test/dockertest"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/thinimage"
)

const testRepo = "unit.cern.ch"

// runCLI runs the command line and returns its exit code and standard
// output; standard error is logged.
func runCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := newRootCommand()
	var stdout bytes.Buffer
	cmd.SetOut(&stdout)
	cmd.SetErr(io.Discard)
	cmd.SetArgs(args)
	err := cmd.Execute()
	code := exitOK
	if err != nil {
		t.Logf("docker2cvmfs %s: %v", strings.Join(args, " "), err)
		code = exitFailure
		var usage *usageError
		if errors.As(err, &usage) {
			code = exitUsage
		}
	}
	return code, stdout.String()
}

// sourceArchive writes a docker save archive of a three-layer image with a
// deleted file and an opaque directory.
func sourceArchive(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "src.tar")
	layers := []dockertest.Layer{
		{dockertest.File("etc/os-release", "NAME=unit\n"), dockertest.File("data/old", "old\n"), dockertest.File("opq/hidden", "h\n")},
		{dockertest.Whiteout("data/old"), dockertest.Opaque("opq"), dockertest.File("opq/new", "n\n")},
		{dockertest.Symlink("data/link", "/etc/os-release"), dockertest.File("data/run.sh", "#!/bin/sh\n").WithMode(0o755)},
	}
	if err := dockertest.WriteImageArchive(p, "unit/src:v1", layers...); err != nil {
		t.Fatal(err)
	}
	return p
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: layers are unpacked with devices and trusted.* attributes")
	}
}

func TestMakeThinFromArchive(t *testing.T) {
	requireRoot(t)
	src := "docker-archive:" + sourceArchive(t)
	root := t.TempDir()
	out := filepath.Join(t.TempDir(), "thin.tar")
	common := []string{"-i", src, "-r", testRepo, "--cvmfs-root", root}

	code, printed := runCLI(t, append([]string{"thin"}, common...)...)
	if code != exitOK {
		t.Fatalf("thin exited %d", code)
	}
	desc, err := thinimage.Parse([]byte(printed))
	if err != nil {
		t.Fatalf("thin printed no descriptor: %v\n%s", err, printed)
	}
	if len(desc.Layers) != 3 {
		t.Fatalf("descriptor lists %d layers, want 3", len(desc.Layers))
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Fatalf("thin wrote into the repository: %v", entries)
	}

	args := append([]string{"make-thin", "-o", "docker-archive:" + out + ":unit/thin:v1", "--progress", "plain"}, common...)
	if code, _ := runCLI(t, args...); code != exitOK {
		t.Fatalf("make-thin exited %d", code)
	}
	first, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := desc.Resolve(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := thinimage.Check(layers); err != nil {
		t.Fatal(err)
	}

	// The same input gives the same thin image, byte for byte.
	if code, _ := runCLI(t, args...); code != exitOK {
		t.Fatalf("second make-thin exited %d", code)
	}
	second, _ := os.ReadFile(out)
	if !bytes.Equal(first, second) {
		t.Error("two runs of make-thin wrote different thin images")
	}

	thinRef := "docker-archive:" + out
	if code, report := runCLI(t, "check", thinRef, "--cvmfs-root", root, "--source", src); code != exitOK {
		t.Fatalf("check exited %d:\n%s", code, report)
	}

	// A leftover whiteout file and a missing file are reported.
	upper := layers[1].Dir
	if err := os.WriteFile(filepath.Join(upper, "data", ".wh.old"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(layers[2].Dir, "data", "run.sh")); err != nil {
		t.Fatal(err)
	}
	code, report := runCLI(t, "check", thinRef, "--cvmfs-root", root, "--source", src)
	if code != exitFailure || !strings.Contains(report, "/data/.wh.old: leftover whiteout file") ||
		!strings.Contains(report, "/data/run.sh: missing") {
		t.Errorf("check of a damaged repository exited %d:\n%s", code, report)
	}

	// A missing layer directory fails the check without --source too.
	if err := os.RemoveAll(layers[0].Dir); err != nil {
		t.Fatal(err)
	}
	if code, report := runCLI(t, "check", thinRef, "--cvmfs-root", root); code != exitFailure || !strings.Contains(report, "layer 1/3") {
		t.Errorf("check with a missing layer exited %d:\n%s", code, report)
	}
}

func TestGC(t *testing.T) {
	requireRoot(t)
	src := "docker-archive:" + sourceArchive(t)
	root := t.TempDir()
	out := "docker-archive:" + filepath.Join(t.TempDir(), "thin.tar") + ":unit/thin:v1"
	if code, _ := runCLI(t, "make-thin", "-i", src, "-o", out, "-r", testRepo, "--cvmfs-root", root, "--progress", "quiet"); code != exitOK {
		t.Fatal("make-thin failed")
	}
	stray := filepath.Join(root, testRepo, "layers", strings.Repeat("f", 64))
	if err := os.MkdirAll(stray, 0o755); err != nil {
		t.Fatal(err)
	}

	code, report := runCLI(t, "gc", "-r", testRepo, "--cvmfs-root", root)
	if code != exitOK || !strings.Contains(report, "Would remove unused layer "+stray) || !strings.Contains(report, "3 layers in use") {
		t.Fatalf("gc dry run exited %d:\n%s", code, report)
	}
	if _, err := os.Stat(stray); err != nil {
		t.Fatal("dry run removed a layer")
	}
	code, report = runCLI(t, "gc", "-r", testRepo, "--cvmfs-root", root, "--delete")
	if code != exitOK || !strings.Contains(report, "Removed unused layer "+stray) {
		t.Fatalf("gc --delete exited %d:\n%s", code, report)
	}
	if _, err := os.Stat(stray); !os.IsNotExist(err) {
		t.Error("gc --delete left the unused layer")
	}
}

func TestUsageErrors(t *testing.T) {
	tests := [][]string{
		{},
		{"bogus"},
		{"make-thin", "-i", "a", "-r", "repo"},
		{"make-thin", "-i", "a", "-o", "b"},
		{"thin", "-r", "repo"},
		{"check"},
		{"check", "a", "b"},
		{"gc"},
		{"gc", "-r", "repo", "extra"},
		{"make-thin", "--no-such-flag"},
		{"thin", "-i", "a", "-r", "repo", "-s", "../escape"},
		{"check", "img", "--whiteout-format", "vfs"},
	}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			if code, _ := runCLI(t, args...); code != exitUsage {
				t.Errorf("exit code %d, want %d", code, exitUsage)
			}
		})
	}
}

func TestHelpOfEveryCommand(t *testing.T) {
	for _, c := range []string{"make-thin", "thin", "check", "gc"} {
		t.Run(c, func(t *testing.T) {
			code, out := runCLI(t, c, "--help")
			if code != exitOK || !strings.Contains(out, "Usage:") {
				t.Errorf("%s --help exited %d:\n%s", c, code, out)
			}
		})
	}
}

func TestMakeThinMissingSource(t *testing.T) {
	root := t.TempDir()
	code, _ := runCLI(t, "make-thin", "-i", "docker-archive:/nonexistent.tar", "-o", "docker-archive:/tmp/x.tar:a:b", "-r", testRepo, "--cvmfs-root", root)
	if code != exitFailure {
		t.Errorf("exit code %d, want %d", code, exitFailure)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Errorf("a failed make-thin wrote into the repository: %v", entries)
	}
}
