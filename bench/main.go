// Command bench measures what cvmfs-graphdriver is for: how fast a node
// that has never seen an image starts a container from it, thin against
// fat, over a shaped link, alone and as a cluster; what the plugin costs
// against Docker's built-in overlay2 on regular images; and how it scales.
// It prints each figure as it is measured and writes them, with plots, to
// an output directory (BENCHMARKS.md explains the method).
//
// It needs root, Debian's docker.io, docker-registry, busybox-static,
// openssh-server, sshfs and gnuplot-nox, and for the full run debootstrap
// and Debian's package mirror; `make bench` installs them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// options are the benchmark's settings.
type options struct {
	quick     bool
	out       string
	cache     string
	runs      int
	link      linkConfig
	parts     []string
	moduleDir string
}

// allParts are the parts of the benchmark, in the order they run.
var allParts = []string{"coldstart", "cluster", "overhead", "scale"}

func main() {
	var o options
	var rateMbit float64
	var parts string
	flag.BoolVar(&o.quick, "quick", false, "a small image and fewer runs: a check that everything works, in minutes")
	flag.StringVar(&o.out, "out", "bench/results", "directory for results.md, results.json and the plots")
	flag.StringVar(&o.cache, "cache", "/var/cache/cvmfs-bench", "directory that keeps the built images between runs")
	flag.IntVar(&o.runs, "runs", 0, "runs per figure (default 3, 1 with --quick)")
	flag.Float64Var(&rateMbit, "rate", 1000, "link rate in Mbit/s")
	flag.DurationVar(&o.link.delay, "delay", 10*time.Millisecond, "one-way link delay")
	flag.StringVar(&parts, "parts", strings.Join(allParts, ","), "parts to run, comma-separated: "+strings.Join(allParts, ", "))
	flag.Parse()
	o.link.rate = int64(rateMbit * 1e6)
	if o.runs == 0 {
		o.runs = 3
		if o.quick {
			o.runs = 1
		}
	}
	o.parts = strings.Split(parts, ",")
	for _, p := range o.parts {
		if !slices.Contains(allParts, p) {
			fmt.Fprintf(os.Stderr, "bench: unknown part %q: valid parts are %s\n", p, strings.Join(allParts, ", "))
			os.Exit(2)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := benchmark(ctx, o); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

// benchmark builds the binaries and runs the parts o names in order,
// writing the report after each, so that a run that stops early keeps the
// parts it finished.
func benchmark(ctx context.Context, o options) (retErr error) {
	if os.Geteuid() != 0 {
		return errors.New("needs root: it starts dockerd, mounts file systems and shapes loopback traffic")
	}
	mod, err := os.Getwd()
	if err != nil {
		return err
	}
	o.moduleDir = mod
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	if err := openLog(filepath.Join(o.out, "bench.log")); err != nil {
		return err
	}
	bin, err := os.MkdirTemp("", "cvmfsbench-bin-")
	if err != nil {
		return err
	}
	defer func() { retErr = errors.Join(retErr, os.RemoveAll(bin)) }()
	plugin, docker2cvmfs := filepath.Join(bin, "cvmfs-graphdriver"), filepath.Join(bin, "docker2cvmfs")
	for out, pkg := range map[string]string{plugin: "./cmd/cvmfs-graphdriver", docker2cvmfs: "./cmd/docker2cvmfs"} {
		if err := run(ctx, "go", "build", "-o", out, pkg); err != nil {
			return err
		}
	}

	r := &report{opts: o, started: time.Now()}
	r.machine = describeMachine()
	logf("bench: %s; link %s; %d runs per figure; results in %s", r.machine, o.link, o.runs, o.out)

	spec := debianImage(384)
	if o.quick {
		spec = busyboxImage(64)
	}
	env := &benchEnv{opts: o, plugin: plugin, docker2cvmfs: docker2cvmfs, spec: spec, report: r}
	defer func() { retErr = errors.Join(retErr, env.close()) }()

	for _, part := range o.parts {
		logf("== %s", part)
		var err error
		switch part {
		case "coldstart":
			err = env.runColdStart(ctx)
		case "cluster":
			err = env.runCluster(ctx)
		case "overhead":
			err = env.runOverhead(ctx)
		case "scale":
			err = env.runScale(ctx)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", part, err)
		}
		if err := r.write(); err != nil {
			return err
		}
	}
	r.finished = time.Now()
	logf("bench: done in %s", r.finished.Sub(r.started).Round(time.Second))
	return r.write()
}

// benchEnv holds what the parts share, set up by the first part that
// needs it and torn down at the end.
type benchEnv struct {
	opts                 options
	plugin, docker2cvmfs string
	spec                 imageSpec
	report               *report

	tb *testbed
}

// testbed starts the registry, the file server and the link, and builds
// the images, on first use.
func (e *benchEnv) testbed(ctx context.Context) (_ *testbed, retErr error) {
	if e.tb != nil {
		return e.tb, nil
	}
	im, err := prepareImages(ctx, e.spec, e.opts.cache, e.plugin, e.docker2cvmfs)
	if err != nil {
		return nil, err
	}
	tb := &testbed{im: im, plugin: e.plugin}
	e.tb = tb
	if tb.net, err = newNetwork(); err != nil {
		return nil, err
	}
	tb.link = newLink(e.opts.link, tb.net.listen)
	server, err := startFileServer(filepath.Join(e.opts.cache, "sshd"))
	if err != nil {
		return nil, err
	}
	tb.server = server
	if tb.registryAddr, err = tb.link.add(im.registry.addr); err != nil {
		return nil, err
	}
	if tb.serverAddr, err = tb.link.add(server.addr); err != nil {
		return nil, err
	}
	if err := tb.link.shape(); err != nil {
		return nil, err
	}
	return tb, nil
}

func (e *benchEnv) close() error {
	if e.tb == nil {
		return nil
	}
	var errs []error
	if e.tb.link != nil {
		errs = append(errs, e.tb.link.close())
	}
	if e.tb.net != nil {
		errs = append(errs, e.tb.net.close())
	}
	if e.tb.server != nil {
		errs = append(errs, e.tb.server.stop())
	}
	errs = append(errs, e.tb.im.stop())
	return errors.Join(errs...)
}

func (e *benchEnv) runColdStart(ctx context.Context) error {
	tb, err := e.testbed(ctx)
	if err != nil {
		return err
	}
	workloads := []struct {
		name string
		argv []string
	}{{"small", e.spec.small}, {"most", e.spec.most}}
	for _, w := range workloads {
		for _, v := range []variant{fat, thin} {
			f := e.report.figure("coldstart", fmt.Sprintf("%s image, %s read", v, w.name))
			for i := range e.opts.runs {
				s, err := measure(f, func() (sample, error) { return tb.coldStart(ctx, v, w.argv) })
				if err != nil {
					return err
				}
				f.add(s)
				logf("coldstart %s %s run %d: %.2f s, %s", v, w.name, i+1, s.seconds, formatBytes(s.bytes))
			}
		}
	}
	return nil
}

func (e *benchEnv) runCluster(ctx context.Context) error {
	tb, err := e.testbed(ctx)
	if err != nil {
		return err
	}
	counts := []int{1, 2, 4, 8}
	if e.opts.quick {
		counts = []int{1, 2}
	}
	for _, v := range []variant{thin, fat} {
		for _, n := range counts {
			f := e.report.figure("cluster", fmt.Sprintf("%s image, %d nodes", v, n))
			f.Nodes = n
			s, err := measure(f, func() (sample, error) { return tb.cluster(ctx, v, e.spec.small, n) })
			if err != nil {
				return err
			}
			f.add(s)
			logf("cluster %s %d nodes: %.2f s, %s", v, n, s.seconds, formatBytes(s.bytes))
		}
	}
	return nil
}

// measure takes one sample, and takes it once more if the first was lost
// to a broken repository mount, which the figure and the log record.
func measure(f *figure, take func() (sample, error)) (sample, error) {
	s, err := take()
	if errors.Is(err, errMountBroke) {
		logf("%s: sample lost to the file server, taken again: %v", f.Name, err)
		f.Retries++
		s, err = take()
	}
	return s, err
}

// Logging: every line goes to standard error and to bench.log; the output
// of the programs the benchmark runs goes to bench.log only.
var (
	logOut  io.Writer = os.Stderr
	logFile io.Writer = io.Discard
)

func openLog(p string) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	logOut = io.MultiWriter(os.Stderr, f)
	logFile = f
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(logOut, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// logWriter is where a program the benchmark runs writes its output.
func logWriter() io.Writer { return logFile }

func describeMachine() string {
	kernel, _ := exec.Command("uname", "-r").Output()
	cores := 0
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		cores = strings.Count(string(b), "\nprocessor")
		if strings.HasPrefix(string(b), "processor") {
			cores++
		}
	}
	return fmt.Sprintf("Linux %s, %d cores", strings.TrimSpace(string(kernel)), cores)
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%d B", n)
	}
}
