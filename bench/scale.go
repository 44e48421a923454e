package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/test/dockertest"
)

// Scale: the plugin alone, with a thin image as deep as Docker allows, with
// many containers starting at once from one thin image, and with a crash of
// the plugin while all of them run.

const (
	// scaleRepo is the repository the scale part's layers live in, in a
	// CernVM-FS root of its own.
	scaleRepo = "scale.cern.ch"
	// scaleDepth is the depth of the deep thin image: Docker's limit of
	// lower layers.
	scaleDepth = 128
	// scaleFallback is how many shallower images are tried when the plugin
	// refuses scaleDepth, since the container's own local layers may count
	// against the same limit.
	scaleFallback = 4
	// deepRuns timed starts of the deep image make one sample.
	deepRuns = 5
	// wideDepth is the depth of the image the many containers run: a few
	// layers, as a typical image has.
	wideDepth = 8
	// startConcurrency is how many docker run -d are under way at once;
	// more only queue up in dockerd.
	startConcurrency = 20
	// rssInterval is how often the plugin's memory is sampled.
	rssInterval = 100 * time.Millisecond
	// recoveryTimeout bounds the wait for a working docker run after the
	// plugin was restarted.
	recoveryTimeout = 60 * time.Second
	// removeBatch containers go to one docker rm -f.
	removeBatch = 50
)

// scaleContainers is how many containers start at once.
func (e *benchEnv) scaleContainers() int {
	if e.opts.quick {
		return 50
	}
	return 200
}

func (e *benchEnv) runScale(ctx context.Context) (retErr error) {
	work, err := os.MkdirTemp("", "cvmfsbench-scale-")
	if err != nil {
		return err
	}
	defer func() { retErr = errors.Join(retErr, os.RemoveAll(work)) }()
	root := filepath.Join(work, "cvmfs")
	layers, err := publishScaleLayers(root, scaleDepth)
	if err != nil {
		return err
	}

	d, err := startDaemon(daemonConfig{plugin: e.plugin, cvmfsRoot: root})
	if err != nil {
		return err
	}
	defer func() { retErr = errors.Join(retErr, d.stop()) }()

	if err := e.scaleDeep(ctx, d, work, layers); err != nil {
		return err
	}

	n := e.scaleContainers()
	img, err := importThinImage(ctx, d, work, fmt.Sprintf("bench/thin-%d", wideDepth), layers[:wideDepth])
	if err != nil {
		return err
	}
	figs := wideFigures{
		rest:     e.report.figure("scale", "plugin RSS at rest"),
		peak:     e.report.figure("scale", fmt.Sprintf("plugin RSS peak while %d containers start", n)),
		start:    e.report.figure("scale", fmt.Sprintf("%d containers started concurrently: total time", n)),
		recovery: e.report.figure("scale", fmt.Sprintf("plugin restart with %d mounted layers: until docker run works", n)),
	}
	figs.rest.Unit, figs.peak.Unit = "B", "B"
	for i := range e.opts.runs {
		if err := scaleWide(ctx, d, img, n, i+1, figs); err != nil {
			return err
		}
	}
	return nil
}

// scaleLayer is one layer of the scale part's images.
type scaleLayer struct {
	tl dockertest.ThinLayer
	// content is what the layer writes into /shared, which every layer
	// overwrites, so that a container shows the uppermost one's.
	content string
}

// publishScaleLayers writes count small layer directories into root as
// <root>/scale.cern.ch/layers/<n>, base first: the first holds a busybox to
// run, and each holds a few files of its own and /shared.
func publishScaleLayers(root string, count int) ([]scaleLayer, error) {
	layers := make([]scaleLayer, count)
	for i := range layers {
		content := fmt.Sprintf("layer %d\n", i)
		l := dockertest.Layer{
			dockertest.File(fmt.Sprintf("layer/%d.txt", i), content),
			dockertest.File(fmt.Sprintf("layer/%d/a", i), "a of "+content),
			dockertest.File(fmt.Sprintf("layer/%d/b", i), "b of "+content),
			dockertest.File("shared", content),
		}
		if i == 0 {
			l = append(l, dockertest.BusyboxLayer()...)
		}
		h := sha256.New()
		if err := l.WriteTar(h); err != nil {
			return nil, err
		}
		rel := "layers/" + strconv.Itoa(i)
		if err := l.WriteDir(filepath.Join(root, scaleRepo, filepath.FromSlash(rel)), dockertest.OverlayFormat); err != nil {
			return nil, err
		}
		layers[i] = scaleLayer{
			tl:      dockertest.ThinLayer{Digest: hex.EncodeToString(h.Sum(nil)), URL: "cvmfs://" + scaleRepo + "/" + rel},
			content: content,
		}
	}
	return layers, nil
}

// importThinImage imports, as ref, a thin image whose descriptor lists
// layers, and returns ref.
func importThinImage(ctx context.Context, d *daemon, dir, ref string, layers []scaleLayer) (string, error) {
	desc := dockertest.Descriptor{Version: "1.0", Origin: "cvmfs-bench", Comment: "bench scale image"}
	for _, l := range layers {
		desc.Layers = append(desc.Layers, l.tl)
	}
	p := filepath.Join(dir, strings.ReplaceAll(ref, "/", "_")+".tar")
	if err := dockertest.WriteThinTar(p, desc.JSON()); err != nil {
		return "", err
	}
	if _, err := d.docker(ctx, "import", p, ref); err != nil {
		return "", err
	}
	return ref, os.Remove(p)
}

// scaleDeep measures docker run of the deepest thin image the plugin
// accepts, trying scaleDepth layers first.
func (e *benchEnv) scaleDeep(ctx context.Context, d *daemon, dir string, layers []scaleLayer) error {
	var refused []error
	for depth := len(layers); depth > len(layers)-scaleFallback; depth-- {
		img, err := importThinImage(ctx, d, dir, fmt.Sprintf("bench/thin-%d", depth), layers[:depth])
		if err != nil {
			return err
		}
		args := []string{"run", "--rm", "--network", "none", img, "cat", "/shared"}
		want := layers[depth-1].content
		check := func(out string) error {
			if out != want {
				return fmt.Errorf("/shared holds %q, want the top layer's %q", out, want)
			}
			return nil
		}

		// The first run tells whether the plugin takes an image this
		// deep, and warms up.
		out, err := d.docker(ctx, args...)
		if err != nil {
			logf("scale: the %d-layer thin image was refused: %v", depth, err)
			refused = append(refused, err)
			if _, err := d.docker(ctx, "rmi", img); err != nil {
				return err
			}
			continue
		}
		if err := check(out); err != nil {
			return fmt.Errorf("%d-layer thin image: %w", depth, err)
		}

		f := e.report.figure("scale", fmt.Sprintf("%d-layer thin image: docker run", depth))
		for i := range e.opts.runs {
			m, err := medianRun(ctx, d, deepRuns, check, args...)
			if err != nil {
				return err
			}
			f.addValue(m.Seconds())
			logf("scale %d-layer thin image, run %d: docker run %.3f s (median of %d)", depth, i+1, m.Seconds(), deepRuns)
		}
		_, err = d.docker(ctx, "rmi", img)
		return err
	}
	return fmt.Errorf("the plugin refused thin images of %d to %d layers: %w",
		len(layers)-scaleFallback+1, len(layers), errors.Join(refused...))
}

// wideFigures are the figures of the many-containers test.
type wideFigures struct {
	rest, peak, start, recovery *figure
}

// scaleWide starts n containers of img at once while it samples the
// plugin's memory, kills and restarts the plugin with all of them running,
// and waits until a container starts again. It removes the containers
// whatever happens.
func scaleWide(ctx context.Context, d *daemon, img string, n, run int, figs wideFigures) (retErr error) {
	rest, err := d.pluginRSS()
	if err != nil {
		return fmt.Errorf("failed to read the plugin's memory: %w", err)
	}
	figs.rest.addValue(float64(rest))

	defer func() { retErr = errors.Join(retErr, removeAllContainers(d)) }()
	sampler := sampleRSS(d, rssInterval)
	start := time.Now()
	startErr := startContainers(ctx, d, img, n)
	took := time.Since(start)
	peak, rssErr := sampler.finish()
	if err := errors.Join(startErr, rssErr); err != nil {
		return err
	}
	figs.start.addValue(took.Seconds())
	figs.peak.addValue(float64(peak))
	logf("scale run %d: %d containers started in %.2f s, %d at a time; plugin RSS %s at rest, %s at peak",
		run, n, took.Seconds(), startConcurrency, formatBytes(rest), formatBytes(peak))

	recovery, attempts, err := restartPluginUntilRun(ctx, d, img)
	if err != nil {
		return err
	}
	figs.recovery.addValue(recovery.Seconds())
	running, err := runningContainers(ctx, d)
	if err != nil {
		return err
	}
	logf("scale run %d: plugin killed and restarted with %d containers running: docker run works after %.3f s (%d attempts); %d containers still run",
		run, n, recovery.Seconds(), attempts, len(running))
	if len(running) != n {
		return fmt.Errorf("%d of %d containers still run after the plugin restart", len(running), n)
	}
	return nil
}

// startContainers runs n detached containers of img, startConcurrency at a
// time, and returns every error.
func startContainers(ctx context.Context, d *daemon, img string, n int) error {
	sem := make(chan struct{}, startConcurrency)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			_, errs[i] = d.docker(ctx, "run", "-d", "--network", "none", img, "sleep", "600")
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// rssSampler samples the plugin's resident memory until finish is called.
type rssSampler struct {
	stop chan struct{}
	done chan struct{}
	peak int64
	err  error
}

func sampleRSS(d *daemon, every time.Duration) *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			rss, err := d.pluginRSS()
			if err != nil {
				s.err = fmt.Errorf("failed to read the plugin's memory: %w", err)
				return
			}
			s.peak = max(s.peak, rss)
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// finish stops the sampling and returns the highest sample.
func (s *rssSampler) finish() (int64, error) {
	close(s.stop)
	<-s.done
	return s.peak, s.err
}

// restartPluginUntilRun kills and restarts the plugin and returns the time
// from the kill until a container of img started and ended, and how many
// attempts that took.
func restartPluginUntilRun(ctx context.Context, d *daemon, img string) (time.Duration, int, error) {
	start := time.Now()
	if err := d.restartPlugin(); err != nil {
		return 0, 0, err
	}
	deadline := start.Add(recoveryTimeout)
	for attempts := 1; ; attempts++ {
		_, err := d.docker(ctx, "run", "--rm", "--network", "none", img, "true")
		if err == nil {
			return time.Since(start), attempts, nil
		}
		if time.Now().After(deadline) {
			return 0, attempts, fmt.Errorf("docker run still failed %s after the plugin restart: %w", recoveryTimeout, err)
		}
		if err := ctx.Err(); err != nil {
			return 0, attempts, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runningContainers returns the ids of the running containers.
func runningContainers(ctx context.Context, d *daemon) ([]string, error) {
	out, err := d.docker(ctx, "ps", "-q")
	if err != nil {
		return nil, err
	}
	return strings.Fields(out), nil
}

// removeAllContainers removes every container of d, removeBatch at a time.
// It does not take the benchmark's context: after an interrupt the
// containers must still go before the daemon stops.
func removeAllContainers(d *daemon) error {
	ctx := context.Background()
	out, err := d.docker(ctx, "ps", "-aq")
	if err != nil {
		return err
	}
	ids := strings.Fields(out)
	n, start := len(ids), time.Now()
	for len(ids) > 0 {
		batch := ids[:min(removeBatch, len(ids))]
		ids = ids[len(batch):]
		if _, err := d.docker(ctx, append([]string{"rm", "-f"}, batch...)...); err != nil {
			return err
		}
	}
	logf("scale: %d containers removed in %.2f s", n, time.Since(start).Seconds())
	return nil
}
