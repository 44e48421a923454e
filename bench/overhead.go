package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Overhead: what the plugin costs against Docker's built-in overlay2 on
// regular images. Two daemons of the same dockerd run side by side, one
// with each driver, and every run measures both, alternating which goes
// first, so that whatever drifts on the machine during the benchmark (the
// page cache, another job) hits both alike.

// Images the overhead operations use, on both daemons.
const (
	// smallImage is a static busybox and nothing else.
	smallImage = "bench/busybox"
	// largeImage is the image docker load reads.
	largeImage = "bench/large"
	// committedImage is the image docker commit makes and docker save
	// writes.
	committedImage = "bench/committed"
	// builtImage is the image docker build makes.
	builtImage = "bench/built"
)

const (
	// latencyRuns timed starts make one sample of the start latency:
	// their median, which one stray slow start cannot move.
	latencyRuns = 10
	// smallFileSize is the size of the many small files, a typical size
	// of the files in a software layer.
	smallFileSize = 4 << 10
	// commitContainer is the name of the container docker commit takes.
	commitContainer = "bench-commit"
)

// overheadSizes are the amounts of data the overhead operations move.
type overheadSizes struct {
	// loadLayers layers of loadLayerMiB of incompressible data, in files
	// of loadFileMiB, then one layer of loadSmallFiles small files make
	// the image docker load reads.
	loadLayers, loadLayerMiB, loadFileMiB, loadSmallFiles int
	// A container writes commitFiles files of commitFileMiB and
	// commitSmallFiles small files before docker commit.
	commitFiles, commitFileMiB, commitSmallFiles int
	// Each writing step of docker build writes buildMiB; the COPY step
	// copies buildMiB and buildSmallFiles small files.
	buildMiB, buildSmallFiles int
}

func overheadSizesFor(quick bool) overheadSizes {
	if quick {
		return overheadSizes{
			loadLayers: 4, loadLayerMiB: 32, loadFileMiB: 8, loadSmallFiles: 5000,
			commitFiles: 4, commitFileMiB: 16, commitSmallFiles: 1000,
			buildMiB: 8, buildSmallFiles: 500,
		}
	}
	return overheadSizes{
		loadLayers: 4, loadLayerMiB: 128, loadFileMiB: 16, loadSmallFiles: 20000,
		commitFiles: 4, commitFileMiB: 64, commitSmallFiles: 3000,
		buildMiB: 32, buildSmallFiles: 2000,
	}
}

// side is one of the two daemons compared.
type side struct {
	label string
	d     *daemon
}

// trial measures one or more operations once on a daemon and returns the
// time each took, in the order of names.
type trial struct {
	names []string
	// bytes are the bytes each operation moves, for a throughput in the
	// log; zero where there is no such figure.
	bytes []int64
	run   func(ctx context.Context, d *daemon) ([]time.Duration, error)
}

func (e *benchEnv) runOverhead(ctx context.Context) (retErr error) {
	sz := overheadSizesFor(e.opts.quick)
	work, err := os.MkdirTemp("", "cvmfsbench-overhead-")
	if err != nil {
		return err
	}
	defer func() { retErr = errors.Join(retErr, os.RemoveAll(work)) }()
	// The plugin needs a CernVM-FS root; regular images never look into it.
	root := filepath.Join(work, "cvmfs")
	if err := os.Mkdir(root, 0o755); err != nil {
		return err
	}

	builtin, err := startDaemon(daemonConfig{})
	if err != nil {
		return fmt.Errorf("failed to start the built-in overlay2 daemon: %w", err)
	}
	defer func() { retErr = errors.Join(retErr, builtin.stop()) }()
	plugin, err := startDaemon(daemonConfig{plugin: e.plugin, cvmfsRoot: root})
	if err != nil {
		return fmt.Errorf("failed to start the plugin daemon: %w", err)
	}
	defer func() { retErr = errors.Join(retErr, plugin.stop()) }()
	sides := [2]side{{"built-in", builtin}, {"plugin", plugin}}

	busybox := filepath.Join(work, "busybox.tar")
	if err := writeBusyboxTar(busybox); err != nil {
		return err
	}
	for _, s := range sides {
		if _, err := s.d.docker(ctx, "import", busybox, smallImage); err != nil {
			return err
		}
	}
	archive, err := buildLoadArchive(ctx, builtin, work, sz)
	if err != nil {
		return err
	}
	info, err := os.Stat(archive)
	if err != nil {
		return err
	}
	buildDir := filepath.Join(work, "build")
	if err := writeBuildContext(buildDir, sz); err != nil {
		return err
	}

	trials := []trial{
		latencyTrial(),
		loadTrial(archive, info.Size()),
		commitTrial(sz),
		buildTrial(buildDir),
		startTrial(),
	}
	for _, t := range trials {
		if err := e.measureTrial(ctx, t, sides); err != nil {
			return err
		}
	}
	return nil
}

// measureTrial runs t e.opts.runs times on both daemons, the built-in one
// first in even runs and the plugin first in odd ones, and records a figure
// per operation and daemon and the ratio of each pair.
func (e *benchEnv) measureTrial(ctx context.Context, t trial, sides [2]side) error {
	figs := make([][2]*figure, len(t.names))
	for j, name := range t.names {
		for k, s := range sides {
			figs[j][k] = e.report.figure("overhead", name+", "+s.label)
		}
	}
	for i := range e.opts.runs {
		for n := range sides {
			k := (i + n) % len(sides)
			s := sides[k]
			took, err := t.run(ctx, s.d)
			if err != nil {
				return fmt.Errorf("%s on the %s daemon: %w", t.names[0], s.label, err)
			}
			for j, d := range took {
				figs[j][k].addValue(d.Seconds())
				rate := ""
				if t.bytes != nil && t.bytes[j] > 0 {
					rate = fmt.Sprintf(", %.0f MiB/s", float64(t.bytes[j])/(1<<20)/d.Seconds())
				}
				logf("overhead %s, %s, run %d: %.3f s%s", t.names[j], s.label, i+1, d.Seconds(), rate)
			}
		}
	}
	for j, name := range t.names {
		e.report.ratios = append(e.report.ratios, ratio{Name: name, Plugin: figs[j][1], Builtin: figs[j][0]})
	}
	return nil
}

// latencyTrial measures `docker run --rm IMG true`: creating, mounting,
// unmounting and removing a container's layers, the driver's share of every
// container start.
func latencyTrial() trial {
	args := []string{"run", "--rm", "--network", "none", smallImage, "true"}
	return trial{
		names: []string{fmt.Sprintf("docker run --rm true, median of %d", latencyRuns)},
		run: func(ctx context.Context, d *daemon) ([]time.Duration, error) {
			// The first start after a pause reads the image from disk
			// again; that is not what this measures.
			if _, err := d.docker(ctx, args...); err != nil {
				return nil, err
			}
			m, err := medianRun(ctx, d, latencyRuns, nil, args...)
			return []time.Duration{m}, err
		},
	}
}

// medianRun runs docker with args n times and returns the median time. If
// check is set, it judges the output of every run.
func medianRun(ctx context.Context, d *daemon, n int, check func(out string) error, args ...string) (time.Duration, error) {
	var times []float64
	for range n {
		start := time.Now()
		out, err := d.docker(ctx, args...)
		took := time.Since(start)
		if err != nil {
			return 0, err
		}
		if check != nil {
			if err := check(out); err != nil {
				return 0, fmt.Errorf("docker %s: %w", strings.Join(args, " "), err)
			}
		}
		times = append(times, took.Seconds())
	}
	return time.Duration(median(times) * float64(time.Second)), nil
}

// buildLoadArchive builds the large image on d with a classic docker build
// from COPY steps, saves it to an archive in dir and removes it from d
// again, so that both daemons load it from nothing. It returns the
// archive's path.
func buildLoadArchive(ctx context.Context, d *daemon, dir string, sz overheadSizes) (_ string, retErr error) {
	ctxDir := filepath.Join(dir, "large")
	defer func() { retErr = errors.Join(retErr, os.RemoveAll(ctxDir)) }()
	logf("overhead: building a %d MiB image of %d layers and %d small files for docker load",
		sz.loadLayers*sz.loadLayerMiB, sz.loadLayers+1, sz.loadSmallFiles)

	// FROM scratch keeps every layer of the archive new to the daemon
	// that loads it.
	dockerfile := "FROM scratch\n"
	for i := range sz.loadLayers {
		name := fmt.Sprintf("data%d", i)
		if err := writeRandomFiles(filepath.Join(ctxDir, name), sz.loadLayerMiB/sz.loadFileMiB, int64(sz.loadFileMiB)<<20); err != nil {
			return "", err
		}
		dockerfile += fmt.Sprintf("COPY %s /%s\n", name, name)
	}
	if err := writeRandomFiles(filepath.Join(ctxDir, "small"), sz.loadSmallFiles, smallFileSize); err != nil {
		return "", err
	}
	dockerfile += "COPY small /small\n"
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		return "", err
	}
	if err := dockerBuild(ctx, d, ctxDir, largeImage); err != nil {
		return "", err
	}

	archive := filepath.Join(dir, "large.tar")
	if _, err := d.docker(ctx, "save", "-o", archive, largeImage); err != nil {
		return "", err
	}
	if _, err := d.docker(ctx, "rmi", largeImage); err != nil {
		return "", err
	}
	return archive, nil
}

// dockerBuild runs a classic docker build of dir as ref, without cache and
// without a network, with its output in the log.
func dockerBuild(ctx context.Context, d *daemon, dir, ref string) error {
	cmd := d.command(ctx, "build", "--no-cache", "--network", "none", "-t", ref, dir)
	cmd.Stdout, cmd.Stderr = logWriter(), logWriter()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("docker build of %s: %w", dir, err)
	}
	return nil
}

// writeRandomFiles writes count files of size incompressible bytes, named
// by number, into a new directory dir.
func writeRandomFiles(dir string, count int, size int64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i := range count {
		p := filepath.Join(dir, strconv.Itoa(i))
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		_, err = io.CopyN(f, rand.Reader, size)
		if err = errors.Join(err, f.Close()); err != nil {
			return fmt.Errorf("failed to write %s: %w", p, err)
		}
	}
	return nil
}

// loadTrial measures docker load of the archive, which is the driver's
// ApplyDiff of every layer, and removes the image again.
func loadTrial(archive string, size int64) trial {
	return trial{
		names: []string{fmt.Sprintf("docker load, %s archive", formatBytes(size))},
		bytes: []int64{size},
		run: func(ctx context.Context, d *daemon) ([]time.Duration, error) {
			start := time.Now()
			if _, err := d.docker(ctx, "load", "-i", archive); err != nil {
				return nil, err
			}
			took := time.Since(start)
			if _, err := d.docker(ctx, "rmi", largeImage); err != nil {
				return nil, err
			}
			return []time.Duration{took}, nil
		},
	}
}

// commitTrial lets a container write large and many small files, then
// measures docker commit of it (the driver's Diff of the container layer
// and ApplyDiff of the new one) and docker save of the committed image (the
// Diff of every layer). It removes the container and the image again.
func commitTrial(sz overheadSizes) trial {
	var script strings.Builder
	script.WriteString("mkdir /big /small &&")
	for i := range sz.commitFiles {
		fmt.Fprintf(&script, " dd if=/dev/urandom of=/big/%d bs=1M count=%d 2>/dev/null &&", i, sz.commitFileMiB)
	}
	// The file names are spelled out because the image's busybox has no
	// seq and ash's arithmetic would need test as well.
	script.WriteString(" for i in")
	for i := range sz.commitSmallFiles {
		fmt.Fprintf(&script, " %d", i)
	}
	fmt.Fprintf(&script, "; do dd if=/dev/urandom of=/small/$i bs=%d count=1 2>/dev/null || exit 1; done", smallFileSize)
	changed := int64(sz.commitFiles*sz.commitFileMiB)<<20 + int64(sz.commitSmallFiles)*smallFileSize

	return trial{
		names: []string{
			fmt.Sprintf("docker commit, %d MiB and %d files changed", sz.commitFiles*sz.commitFileMiB, sz.commitSmallFiles),
			"docker save of the committed image",
		},
		bytes: []int64{changed, changed},
		run: func(ctx context.Context, d *daemon) (_ []time.Duration, retErr error) {
			if _, err := d.docker(ctx, "run", "--network", "none", "--name", commitContainer,
				smallImage, "sh", "-c", script.String()); err != nil {
				return nil, err
			}
			defer func() {
				_, err := d.docker(context.WithoutCancel(ctx), "rm", commitContainer)
				retErr = errors.Join(retErr, err)
			}()

			start := time.Now()
			if _, err := d.docker(ctx, "commit", commitContainer, committedImage); err != nil {
				return nil, err
			}
			commit := time.Since(start)
			defer func() {
				_, err := d.docker(context.WithoutCancel(ctx), "rmi", committedImage)
				retErr = errors.Join(retErr, err)
			}()

			save, err := dockerSaveDiscard(ctx, d, committedImage)
			if err != nil {
				return nil, err
			}
			return []time.Duration{commit, save}, nil
		},
	}
}

// dockerSaveDiscard times docker save of ref with its output thrown away.
func dockerSaveDiscard(ctx context.Context, d *daemon, ref string) (_ time.Duration, retErr error) {
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return 0, err
	}
	defer func() { retErr = errors.Join(retErr, null.Close()) }()
	cmd := d.command(ctx, "save", ref)
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = null, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("docker save %s: %w: %s", ref, err, strings.TrimSpace(stderr.String()))
	}
	return time.Since(start), nil
}

// buildSteps is the number of steps of the build trial's Dockerfile after
// FROM.
const buildSteps = 7

// writeBuildContext writes the build trial's context: a Dockerfile whose
// steps write large and small files, delete a file below (a whiteout) and
// rewrite one (a copy-up), and COPY data from the context.
func writeBuildContext(dir string, sz overheadSizes) error {
	if err := writeRandomFiles(filepath.Join(dir, "files", "large"), 2, int64(sz.buildMiB)<<20/2); err != nil {
		return err
	}
	if err := writeRandomFiles(filepath.Join(dir, "files", "small"), sz.buildSmallFiles, smallFileSize); err != nil {
		return err
	}
	names := make([]string, sz.buildSmallFiles)
	for i := range names {
		names[i] = strconv.Itoa(i)
	}
	dockerfile := fmt.Sprintf(`FROM %[1]s
RUN mkdir /b && dd if=/dev/urandom of=/b/1 bs=1M count=%[2]d 2>/dev/null
RUN mkdir /b/s && for i in %[3]s; do echo $i >/b/s/$i || exit 1; done
RUN dd if=/dev/urandom of=/b/2 bs=1M count=%[2]d 2>/dev/null
RUN rm /b/1
RUN cat /b/2 /b/2 >/b/3 && echo appended >>/b/2
RUN echo done >/b/done
COPY files /files
`, smallImage, sz.buildMiB, strings.Join(names, " "))
	return os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644)
}

// buildTrial measures a classic docker build without cache: for every step
// a container layer is created, mounted, diffed and committed.
func buildTrial(dir string) trial {
	return trial{
		names: []string{fmt.Sprintf("docker build, %d steps, --no-cache", buildSteps)},
		run: func(ctx context.Context, d *daemon) ([]time.Duration, error) {
			start := time.Now()
			if err := dockerBuild(ctx, d, dir, builtImage); err != nil {
				return nil, err
			}
			took := time.Since(start)
			if _, err := d.docker(ctx, "rmi", builtImage); err != nil {
				return nil, err
			}
			return []time.Duration{took}, nil
		},
	}
}

// startTrial restarts dockerd and takes the time from its start until it
// answers docker info. With the plugin this includes dockerd's wait before
// it first dials a plugin, which no plugin can shorten.
func startTrial() trial {
	return trial{
		names: []string{"dockerd start until docker info answers"},
		run: func(ctx context.Context, d *daemon) ([]time.Duration, error) {
			if err := d.restartDockerd(); err != nil {
				return nil, err
			}
			return []time.Duration{d.started}, nil
		},
	}
}
