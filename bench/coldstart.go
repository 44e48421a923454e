package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Cold start: a node that has never seen the image runs it, and the clock
// stops at the container's first line of output. The fat image comes whole
// from the registry; the thin image's descriptor comes from the registry
// and its files from the repository's file server as the container opens
// them. Every byte of both crosses the same shaped link.

// variant is how a node gets the image.
type variant string

const (
	fat  variant = "fat"
	thin variant = "thin"
)

// sample is one measured start.
type sample struct {
	seconds float64
	bytes   int64
}

// testbed is what cold starts share: the images, the link in front of the
// registry and the file server, and the plugin.
type testbed struct {
	im     *images
	net    *network
	link   *link
	server *fileServer
	plugin string
	// registryAddr and serverAddr are the relays nodes reach the
	// registry and the file server through.
	registryAddr, serverAddr string
}

// node is a host of its own: a network namespace, a daemon with the
// plugin in it and, for thin images, the repository mounted from the file
// server through the link, by a client in the node's namespace.
type node struct {
	ns        *netns
	d         *daemon
	cvmfsRoot string
	mounted   string
}

func (tb *testbed) startNode(v variant) (_ *node, retErr error) {
	root, err := os.MkdirTemp("", "cvmfsbench-root-")
	if err != nil {
		return nil, err
	}
	n := &node{cvmfsRoot: root}
	defer func() {
		if retErr != nil {
			retErr = errors.Join(retErr, n.stop())
		}
	}()
	if n.ns, err = tb.net.addNode(); err != nil {
		return nil, err
	}
	if v == thin {
		target := filepath.Join(root, repoName)
		if err := tb.server.mount(n.ns, tb.serverAddr, filepath.Join(tb.im.repoRoot, repoName), target); err != nil {
			return nil, err
		}
		n.mounted = target
		if err := n.checkMount(); err != nil {
			return nil, err
		}
	}
	d, err := startDaemon(daemonConfig{plugin: tb.plugin, cvmfsRoot: root, netns: n.ns,
		insecureRegistries: []string{tb.registryAddr}})
	if err != nil {
		return nil, err
	}
	n.d = d
	return n, nil
}

// checkMount fails if the node's repository mount does not answer.
func (n *node) checkMount() error {
	if n.mounted == "" {
		return nil
	}
	if _, err := os.ReadDir(n.mounted); err != nil {
		return fmt.Errorf("the repository mount %s of node %s does not answer: %w", n.mounted, n.ns.name, err)
	}
	return nil
}

func (n *node) stop() error {
	var errs []error
	if n.d != nil {
		errs = append(errs, n.d.stop())
	}
	if n.mounted != "" {
		errs = append(errs, unmountFuse(n.mounted))
	}
	errs = append(errs, n.ns.remove())
	return errors.Join(append(errs, os.RemoveAll(n.cvmfsRoot))...)
}

// ref is the image reference a node pulls, through the link.
func (tb *testbed) ref(v variant) string {
	return tb.registryAddr + "/bench/" + tb.im.spec.name + ":" + string(v)
}

// firstOutput runs the image on n with the workload and returns the time
// until the container's first line of output. It waits for the container
// to end, and fails if the line is not there or the run fails.
func (tb *testbed) firstOutput(ctx context.Context, n *node, v variant, workload []string) (time.Duration, error) {
	args := append([]string{"run", "--rm", "--network", "none", tb.ref(v)}, workload...)
	cmd := n.d.command(ctx, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(out)
	var first time.Duration
	var line string
	if sc.Scan() {
		first = time.Since(start)
		line = sc.Text()
		for sc.Scan() {
		}
	}
	if err := cmd.Wait(); err != nil {
		return 0, fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	if line == "" {
		return 0, fmt.Errorf("docker %s printed nothing", strings.Join(args, " "))
	}
	return first, nil
}

// coldStart measures one start of the image on a fresh node.
func (tb *testbed) coldStart(ctx context.Context, v variant, workload []string) (sample, error) {
	n, err := tb.startNode(v)
	if err != nil {
		return sample{}, err
	}
	tb.link.reset()
	d, err := tb.firstOutput(ctx, n, v, workload)
	s := sample{seconds: d.Seconds(), bytes: tb.link.bytes()}
	if err != nil {
		err = errors.Join(brokenMounts([]*node{n}), err)
	}
	return s, errors.Join(err, n.stop())
}

// errMountBroke marks a sample lost to the file server standing in for
// CernVM-FS, not to what is measured: now and then one of several sshfs
// mounts stops answering ("transport endpoint is not connected").
var errMountBroke = errors.New("a repository mount broke")

// brokenMounts returns an error wrapping errMountBroke if the repository
// mount of one of the nodes does not answer.
func brokenMounts(nodes []*node) error {
	var errs []error
	for _, n := range nodes {
		if err := n.checkMount(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", errMountBroke, errors.Join(errs...))
}

// cluster starts the image on count fresh nodes at once and returns the
// time until the last of them printed its first line, and the bytes of all
// of them together.
func (tb *testbed) cluster(ctx context.Context, v variant, workload []string, count int) (_ sample, retErr error) {
	nodes := make([]*node, 0, count)
	defer func() {
		for _, n := range nodes {
			retErr = errors.Join(retErr, n.stop())
		}
	}()
	for range count {
		n, err := tb.startNode(v)
		if err != nil {
			return sample{}, err
		}
		nodes = append(nodes, n)
	}
	// A node whose repository mount broke while the others started would
	// fail its run for a reason that has nothing to do with the image.
	if err := brokenMounts(nodes); err != nil {
		return sample{}, err
	}
	tb.link.reset()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, count)
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = tb.firstOutput(ctx, n, v, workload)
		}()
	}
	wg.Wait()
	s := sample{seconds: time.Since(start).Seconds(), bytes: tb.link.bytes()}
	err := errors.Join(errs...)
	if err != nil {
		err = errors.Join(brokenMounts(nodes), err)
	}
	return s, err
}
