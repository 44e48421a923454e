package overlay2

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/moby/go-archive"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/graphdriver"
)

// commitTar returns a layer of files regular files of size bytes each in
// dirs directories, the shape of a `docker commit` after a package install.
func commitTar(b *testing.B, dirs, files, size int) []byte {
	b.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	content := bytes.Repeat([]byte("x"), size)
	for i := 0; i < dirs; i++ {
		dir := fmt.Sprintf("usr/lib/pkg%03d/", i)
		if err := tw.WriteHeader(&tar.Header{Name: dir, Mode: 0o755, Typeflag: tar.TypeDir}); err != nil {
			b.Fatal(err)
		}
		for j := 0; j < files/dirs; j++ {
			hdr := &tar.Header{Name: dir + "file" + strconv.Itoa(j), Mode: 0o644, Size: int64(size), Typeflag: tar.TypeReg}
			if err := tw.WriteHeader(hdr); err != nil {
				b.Fatal(err)
			}
			if _, err := tw.Write(content); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkApplyDiff measures the driver's ApplyDiff of a layer of 3,000
// files of 4 KiB against the unpacking it is built on and against GNU tar
// on the same disk, in files per second.
func BenchmarkApplyDiff(b *testing.B) {
	const dirs, files, size = 30, 3000, 4096
	layer := commitTar(b, dirs, files, size)

	report := func(b *testing.B) {
		b.ReportMetric(float64(files*b.N)/b.Elapsed().Seconds(), "files/s")
		b.SetBytes(int64(len(layer)))
	}

	b.Run("driver", func(b *testing.B) {
		if os.Getuid() != 0 {
			b.Skip("needs root")
		}
		d, err := New(graphdriver.InitOptions{Home: b.TempDir()}, b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; b.Loop(); i++ {
			id := "layer" + strconv.Itoa(i)
			if err := d.Create(id, "", graphdriver.CreateOpts{}); err != nil {
				b.Fatal(err)
			}
			if _, err := d.ApplyDiff(id, "", bytes.NewReader(layer)); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})

	b.Run("unpack", func(b *testing.B) {
		root := b.TempDir()
		for i := 0; b.Loop(); i++ {
			dir := filepath.Join(root, strconv.Itoa(i))
			if err := os.Mkdir(dir, 0o755); err != nil {
				b.Fatal(err)
			}
			opts := &archive.TarOptions{WhiteoutFormat: archive.OverlayWhiteoutFormat}
			if err := archive.Unpack(bytes.NewReader(layer), dir, opts); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})

	b.Run("gnu-tar", func(b *testing.B) {
		if _, err := exec.LookPath("tar"); err != nil {
			b.Skip("no tar")
		}
		root := b.TempDir()
		for i := 0; b.Loop(); i++ {
			dir := filepath.Join(root, strconv.Itoa(i))
			if err := os.Mkdir(dir, 0o755); err != nil {
				b.Fatal(err)
			}
			cmd := exec.Command("tar", "-x", "-C", dir)
			cmd.Stdin = bytes.NewReader(layer)
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("tar: %v\n%s", err, out)
			}
		}
		report(b)
	})
}
