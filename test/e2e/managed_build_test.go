package e2e

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/test/dockertest"
)

// TestPluginDirReproducible runs `make plugin-dir` twice into different
// directories: the two trees, modes, times and bytes included, are the
// same, and the binary is static.
func TestPluginDirReproducible(t *testing.T) {
	dockertest.Require(t)

	var trees [2]map[string]string
	for i := range trees {
		dir := filepath.Join(t.TempDir(), "plugin")
		cmd := exec.Command("make", "--no-print-directory", "plugin-dir", "PLUGIN_DIR="+dir, "VERSION=e2e")
		cmd.Dir = moduleDir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make plugin-dir: %v\n%s", err, out)
		}
		tree, err := describeTree(dir)
		if err != nil {
			t.Fatal(err)
		}
		trees[i] = tree
	}

	if diff := dockertest.DiffLines(treeLines(trees[0]), treeLines(trees[1])); diff != "" {
		t.Errorf("two runs of make plugin-dir differ (-first +second):\n%s", diff)
	}
	for _, want := range []string{"config.json", "rootfs/cvmfs-graphdriver", "rootfs/tmp", "rootfs/cvmfs",
		"rootfs/var/lib/docker-graph", "rootfs/run/docker/plugins"} {
		if _, ok := trees[0][want]; !ok {
			t.Errorf("the plugin directory lacks %s", want)
		}
	}
	if err := checkStaticBinary(filepath.Join(pluginDir(t), "rootfs", "cvmfs-graphdriver")); err != nil {
		t.Error(err)
	}
}

// TestPluginImage builds the plugin's root file system as an image with
// the Dockerfile, from scratch, and checks that a container of it exports
// the tree `make plugin-dir` wrote.
func TestPluginImage(t *testing.T) {
	dockertest.Require(t)
	m := dockertest.StartBare(t)
	dir := filepath.Join(t.TempDir(), "plugin")

	m.Make(t, moduleDir, "plugin-image", "PLUGIN_DIR="+dir, "VERSION=e2e", "PLUGIN_TAG=e2e")
	image := dockertest.ManagedPluginName + "-rootfs:e2e"
	c := strings.TrimSpace(m.MustDocker(t, "create", image))
	archive := filepath.Join(t.TempDir(), "rootfs.tar")
	m.MustDocker(t, "export", "-o", archive, c)
	m.MustDocker(t, "rm", c)

	want, err := describeTree(filepath.Join(dir, "rootfs"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := describeTar(archive)
	if err != nil {
		t.Fatal(err)
	}
	// dockerd adds what every container has; times are not compared, as
	// COPY does not keep them.
	for _, p := range []string{".dockerenv", "etc", "etc/hostname", "etc/hosts", "etc/mtab", "etc/resolv.conf",
		"dev/console", "dev/pts", "dev/shm", "proc", "sys"} {
		if _, ok := want[p]; !ok {
			delete(got, p)
		}
	}
	if diff := dockertest.DiffLines(treeLines(withoutTimes(want)), treeLines(withoutTimes(got))); diff != "" {
		t.Errorf("the image's files differ from make plugin-dir's (-dir +image):\n%s", diff)
	}
}

// describeTree describes each path below root: type, mode, time and, for
// a file, the sha256 of its content.
func describeTree(root string) (map[string]string, error) {
	tree := make(map[string]string)
	err := filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		info, err := de.Info()
		if err != nil {
			return err
		}
		desc := fmt.Sprintf("%s %d", info.Mode(), info.ModTime().Unix())
		if info.Mode().IsRegular() {
			sum, err := fileSum(p)
			if err != nil {
				return err
			}
			desc += " " + sum
		}
		tree[rel] = desc
		return nil
	})
	return tree, err
}

// describeTar describes each entry of a tar as describeTree does a tree.
func describeTar(p string) (map[string]string, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()

	tree := make(map[string]string)
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return tree, nil
		}
		if err != nil {
			return nil, err
		}
		name := strings.TrimSuffix(strings.TrimPrefix(hdr.Name, "./"), "/")
		if name == "" || name == "." {
			continue
		}
		desc := fmt.Sprintf("%s %d", hdr.FileInfo().Mode(), hdr.ModTime.Unix())
		if hdr.Typeflag == tar.TypeReg {
			h := sha256.New()
			if _, err := io.Copy(h, tr); err != nil {
				return nil, err
			}
			desc += " " + hex.EncodeToString(h.Sum(nil))
		}
		tree[name] = desc
	}
}

// withoutTimes drops the times from descriptions.
func withoutTimes(tree map[string]string) map[string]string {
	out := make(map[string]string, len(tree))
	for p, desc := range tree {
		fields := strings.Fields(desc)
		out[p] = strings.Join(append(fields[:1:1], fields[2:]...), " ")
	}
	return out
}

// treeLines turns a described tree into sorted lines.
func treeLines(tree map[string]string) []string {
	lines := make([]string, 0, len(tree))
	for p, desc := range tree {
		lines = append(lines, p+" "+desc)
	}
	return lines
}

// fileSum returns the hex sha256 of a file.
func fileSum(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// checkStaticBinary fails for an executable that needs a dynamic loader:
// the plugin's root file system has none.
func checkStaticBinary(p string) error {
	out, err := exec.Command("go", "version", "-m", p).CombinedOutput()
	if err != nil {
		return fmt.Errorf("go version -m %s: %v\n%s", p, err, out)
	}
	if !strings.Contains(string(out), "CGO_ENABLED=0") {
		return fmt.Errorf("%s was not built with CGO_ENABLED=0:\n%s", p, out)
	}
	return nil
}
