package main

import (
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The network between the nodes and their servers: every byte a node
// fetches, from the registry or from the repository's file server, crosses
// one shaped link, shared by all nodes as a site's uplink is. The kernel
// here has no netem, so the link is built from two parts: a TCP relay in
// this program, listening on the nodes' bridge, that holds every chunk for
// the one-way delay in each direction and counts the bytes, and an htb
// class on the loopback device that limits the rate of the relay's
// connections on to the servers.

// linkConfig shapes the link.
type linkConfig struct {
	// rate is the link's rate in bits per second.
	rate int64
	// delay is the one-way delay, applied in each direction.
	delay time.Duration
}

func (c linkConfig) String() string {
	return fmt.Sprintf("%s, %s one way", formatRate(c.rate), c.delay)
}

// link is the shaped link: relays for each server and the traffic control
// that limits them.
type link struct {
	cfg    linkConfig
	listen func() (net.Listener, error)
	relays []*relay
	// ports are the servers' loopback ports.
	ports  []int
	shaped bool
}

// newLink returns a link whose relays listen where listen says.
func newLink(cfg linkConfig, listen func() (net.Listener, error)) *link {
	return &link{cfg: cfg, listen: listen}
}

// add starts a relay that forwards to target, a server on loopback,
// through the link, and returns the relay's address.
func (l *link) add(target string) (string, error) {
	_, port, err := net.SplitHostPort(target)
	if err != nil {
		return "", err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return "", fmt.Errorf("bad port in %s: %w", target, err)
	}
	ln, err := l.listen()
	if err != nil {
		return "", fmt.Errorf("failed to listen for a relay to %s: %w", target, err)
	}
	r := startRelay(ln, target, l.cfg.delay)
	l.relays = append(l.relays, r)
	l.ports = append(l.ports, p)
	return r.addr(), nil
}

// shape applies the rate limit to the relays' connections to the servers.
// What a server sends leaves with the server's port as source port, what
// it receives has it as destination port. Each direction gets the full
// rate, as on a full-duplex link. A client that reaches a server directly,
// not through a relay, is shaped too, which is why the images are built
// before the link is shaped.
func (l *link) shape() error {
	if l.cfg.rate <= 0 {
		return nil
	}
	rate := strconv.FormatInt(l.cfg.rate, 10) + "bit"
	cmds := [][]string{
		{"qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb", "default", "99"},
		{"class", "add", "dev", "lo", "parent", "1:", "classid", "1:99", "htb", "rate", "100gbit"},
		{"class", "add", "dev", "lo", "parent", "1:", "classid", "1:10", "htb", "rate", rate, "ceil", rate},
		{"class", "add", "dev", "lo", "parent", "1:", "classid", "1:20", "htb", "rate", rate, "ceil", rate},
	}
	for _, p := range l.ports {
		port := strconv.Itoa(p)
		cmds = append(cmds,
			[]string{"filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip", "prio", "1", "u32",
				"match", "ip", "sport", port, "0xffff", "flowid", "1:10"},
			[]string{"filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip", "prio", "1", "u32",
				"match", "ip", "dport", port, "0xffff", "flowid", "1:20"})
	}
	l.shaped = true
	for _, args := range cmds {
		if out, err := exec.Command("tc", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("tc %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// bytes returns the bytes that crossed the link in both directions since
// the last reset.
func (l *link) bytes() int64 {
	var n int64
	for _, r := range l.relays {
		n += r.up.Load() + r.down.Load()
	}
	return n
}

func (l *link) reset() {
	for _, r := range l.relays {
		r.up.Store(0)
		r.down.Store(0)
	}
}

// close stops the relays and removes the traffic control.
func (l *link) close() error {
	var errs []error
	for _, r := range l.relays {
		errs = append(errs, r.close())
	}
	if l.shaped {
		if out, err := exec.Command("tc", "qdisc", "del", "dev", "lo", "root").CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("failed to remove traffic control from lo: %w: %s", err, out))
		}
	}
	return errors.Join(errs...)
}

// relay forwards TCP connections from a loopback port to a target, holding
// each chunk for a delay and counting the bytes each way.
type relay struct {
	ln     net.Listener
	target string
	delay  time.Duration
	// up counts bytes towards the target, down bytes from it.
	up, down atomic.Int64

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func startRelay(ln net.Listener, target string, delay time.Duration) *relay {
	r := &relay{ln: ln, target: target, delay: delay, conns: make(map[net.Conn]struct{})}
	r.wg.Add(1)
	go r.serve()
	return r
}

func (r *relay) addr() string { return r.ln.Addr().String() }

func (r *relay) serve() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.handle(c)
		}()
	}
}

func (r *relay) track(c net.Conn, on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if on {
		r.conns[c] = struct{}{}
	} else {
		delete(r.conns, c)
	}
}

func (r *relay) handle(client net.Conn) {
	server, err := net.Dial("tcp", r.target)
	if err != nil {
		client.Close()
		return
	}
	r.track(client, true)
	r.track(server, true)
	defer func() {
		r.track(client, false)
		r.track(server, false)
		client.Close()
		server.Close()
	}()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.pipe(server, client, &r.up) }()
	go func() { defer wg.Done(); r.pipe(client, server, &r.down) }()
	wg.Wait()
}

// chunkSize is the most a relay reads at once; relayQueue is how many
// chunks may be in flight in one direction, which bounds the relay's
// memory and, like a real link's buffers, lets the sender run ahead by at
// most that much.
const (
	chunkSize  = 64 << 10
	relayQueue = 256
)

type chunk struct {
	data []byte
	due  time.Time
}

// pipe copies src to dst, releasing each chunk delay after it was read.
func (r *relay) pipe(dst, src net.Conn, count *atomic.Int64) {
	q := make(chan chunk, relayQueue)
	go func() {
		defer close(q)
		for {
			buf := make([]byte, chunkSize)
			n, err := src.Read(buf)
			if n > 0 {
				q <- chunk{data: buf[:n], due: time.Now().Add(r.delay)}
			}
			if err != nil {
				return
			}
		}
	}()
	failed := false
	for c := range q {
		if failed {
			continue
		}
		time.Sleep(time.Until(c.due))
		if _, err := dst.Write(c.data); err != nil {
			failed = true
			src.Close()
			continue
		}
		count.Add(int64(len(c.data)))
	}
	if tc, ok := dst.(*net.TCPConn); ok && !failed {
		tc.CloseWrite()
	}
}

func (r *relay) close() error {
	err := r.ln.Close()
	r.mu.Lock()
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
	return err
}

func formatRate(bps int64) string {
	switch {
	case bps >= 1e9 && bps%1e9 == 0:
		return fmt.Sprintf("%d Gbit/s", bps/1e9)
	case bps >= 1e6:
		return fmt.Sprintf("%g Mbit/s", float64(bps)/1e6)
	default:
		return fmt.Sprintf("%d bit/s", bps)
	}
}
