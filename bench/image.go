package main

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The images under test. Both kinds are built once and kept in the cache
// directory (a registry's storage and a repository directory), since
// building the realistic one downloads Debian packages.

// imageSpec describes one benchmark image and what a container of it runs.
type imageSpec struct {
	// name is the image's name in the registry and the cache.
	name string
	// small reads a small part of the image, most reads most of it; each
	// prints one line when it is done.
	small, most []string
	// build makes the image's build context in dir and returns the base
	// image tar to import as "bench/base".
	build func(ctx context.Context, dir string) (baseTar string, err error)
}

// repoName is the repository the thin images' layers live in.
const repoName = "bench.cern.ch"

// debianMirror is where debootstrap fetches packages.
const debianMirror = "http://deb.debian.org/debian"

// debianImage is a Debian 12 root file system with Python and NumPy, a C
// compiler and data files, about 1 GB in four layers: what a physics
// analysis image looks like.
func debianImage(dataMiB int) imageSpec {
	return imageSpec{
		name:  fmt.Sprintf("debian-%dm", dataMiB),
		small: []string{"python3", "-c", "import numpy; print('numpy', numpy.__version__)"},
		most:  readAll,
		build: func(ctx context.Context, dir string) (string, error) {
			rootfs := filepath.Join(dir, "rootfs")
			logf("debootstrap: a minimal Debian 12 from %s", debianMirror)
			if err := run(ctx, "debootstrap", "--variant=minbase", "bookworm", rootfs, debianMirror); err != nil {
				return "", err
			}
			base := filepath.Join(dir, "base.tar")
			if err := run(ctx, "tar", "--numeric-owner", "-C", rootfs, "-cf", base, "."); err != nil {
				return "", err
			}
			if err := os.RemoveAll(rootfs); err != nil {
				return "", err
			}
			dockerfile := `FROM bench/base
RUN apt-get update && apt-get install -y --no-install-recommends python3-numpy && rm -rf /var/lib/apt/lists/*
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
COPY data /data
CMD ["python3"]
`
			return base, writeContext(dir, dockerfile, dataMiB, 16)
		},
	}
}

// busyboxImage is a small image for --quick: a static busybox and data
// files, with no download.
func busyboxImage(dataMiB int) imageSpec {
	return imageSpec{
		name:  fmt.Sprintf("busybox-%dm", dataMiB),
		small: []string{"sh", "-c", "cat /data/000 >/dev/null && echo read one file"},
		most:  readAll,
		build: func(ctx context.Context, dir string) (string, error) {
			base := filepath.Join(dir, "base.tar")
			if err := writeBusyboxTar(base); err != nil {
				return "", err
			}
			dockerfile := "FROM bench/base\nCOPY data /data\nCMD [\"sh\"]\n"
			return base, writeContext(dir, dockerfile, dataMiB, 4)
		},
	}
}

// readAll reads every file of the image, 32 at a time, as a job that scans
// its software and data would.
var readAll = []string{"sh", "-c",
	"find / -xdev -type f -print0 | xargs -0 -P 32 -n 16 cat >/dev/null; echo read everything"}

// writeContext writes the build context: the Dockerfile and dataMiB of
// incompressible data in files of fileMiB.
func writeContext(dir, dockerfile string, dataMiB, fileMiB int) error {
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		return err
	}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return err
	}
	for i := 0; i*fileMiB < dataMiB; i++ {
		f, err := os.Create(filepath.Join(data, fmt.Sprintf("%03d", i)))
		if err != nil {
			return err
		}
		_, err = io.CopyN(f, rand.Reader, int64(fileMiB)<<20)
		if err = errors.Join(err, f.Close()); err != nil {
			return err
		}
	}
	return nil
}

// busyboxApplets are the commands the quick image's workloads use.
var busyboxApplets = []string{"sh", "cat", "find", "xargs", "echo", "true", "sleep", "dd", "mkdir", "rm"}

const busyboxPath = "/bin/busybox"

func writeBusyboxTar(p string) (retErr error) {
	bin, err := os.ReadFile(busyboxPath)
	if err != nil {
		return fmt.Errorf("the quick image needs a static busybox (Debian's busybox-static): %w", err)
	}
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	defer func() { retErr = errors.Join(retErr, f.Close()) }()
	tw := tar.NewWriter(f)
	mtime := time.Unix(0, 0)
	hdrs := []*tar.Header{
		{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime},
		{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777, ModTime: mtime},
		{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bin)), ModTime: mtime},
	}
	for _, a := range busyboxApplets {
		hdrs = append(hdrs, &tar.Header{Name: "bin/" + a, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777, ModTime: mtime})
	}
	for _, h := range hdrs {
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if h.Name == "bin/busybox" {
			if _, err := tw.Write(bin); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

// images are the benchmark's images, served by a registry whose storage
// and a repository directory both live in the cache.
type images struct {
	spec     imageSpec
	cacheDir string // <cache>/<spec.name>
	// repoRoot stands for /cvmfs on the file server: it holds repoName.
	repoRoot string
	registry *registry
}

func (im *images) fatRef() string  { return im.registry.addr + "/bench/" + im.spec.name + ":fat" }
func (im *images) thinRef() string { return im.registry.addr + "/bench/" + im.spec.name + ":thin" }

// prepareImages starts the registry on the cached storage and builds both
// images into it unless a previous run did.
func prepareImages(ctx context.Context, spec imageSpec, cache, plugin, docker2cvmfs string) (_ *images, retErr error) {
	im := &images{spec: spec, cacheDir: filepath.Join(cache, spec.name)}
	im.repoRoot = filepath.Join(im.cacheDir, "cvmfs")
	reg, err := startRegistry(filepath.Join(im.cacheDir, "registry"))
	if err != nil {
		return nil, err
	}
	im.registry = reg
	defer func() {
		if retErr != nil {
			retErr = errors.Join(retErr, reg.stop())
		}
	}()

	stamp := filepath.Join(im.cacheDir, "built")
	if _, err := os.Stat(stamp); err == nil {
		logf("images %s: cached in %s", spec.name, im.cacheDir)
		return im, nil
	}
	logf("images %s: building into %s (once; later runs reuse it)", spec.name, im.cacheDir)
	if err := im.build(ctx, plugin, docker2cvmfs); err != nil {
		return nil, fmt.Errorf("failed to build the %s images: %w", spec.name, err)
	}
	return im, os.WriteFile(stamp, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644)
}

func (im *images) build(ctx context.Context, plugin, docker2cvmfs string) (retErr error) {
	work, err := os.MkdirTemp(im.cacheDir, "build-")
	if err != nil {
		return err
	}
	defer func() { retErr = errors.Join(retErr, os.RemoveAll(work)) }()
	if err := os.RemoveAll(im.repoRoot); err != nil {
		return err
	}

	builder, err := startDaemon(daemonConfig{insecureRegistries: []string{im.registry.addr}})
	if err != nil {
		return err
	}
	defer func() { retErr = errors.Join(retErr, builder.stop()) }()

	base, err := im.spec.build(ctx, work)
	if err != nil {
		return err
	}
	if _, err := builder.docker(ctx, "import", base, "bench/base"); err != nil {
		return err
	}
	if err := os.Remove(base); err != nil {
		return err
	}
	build := builder.command(ctx, "build", "--network", "host", "-t", im.fatRef(), work)
	build.Stdout, build.Stderr = logWriter(), logWriter()
	if err := build.Run(); err != nil {
		return fmt.Errorf("docker build: %w", err)
	}
	if _, err := builder.docker(ctx, "push", im.fatRef()); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, docker2cvmfs, "make-thin", "-i", "docker://"+im.fatRef(), "-o", "docker://"+im.thinRef(),
		"-r", repoName, "--cvmfs-root", im.repoRoot, "--progress", "plain")
	cmd.Stdout, cmd.Stderr = logWriter(), logWriter()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("docker2cvmfs make-thin: %w", err)
	}
	return nil
}

// stop stops the registry.
func (im *images) stop() error { return im.registry.stop() }

// run runs a command with its output in the benchmark's log.
func run(ctx context.Context, argv ...string) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logWriter(), logWriter()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	}
	return nil
}

// treeBytes returns the size of the regular files below dir.
func treeBytes(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.Type().IsRegular() {
			info, err := e.Info()
			if err != nil {
				return err
			}
			n += info.Size()
		}
		return nil
	})
	return n, err
}
