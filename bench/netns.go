package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
)

// Every node is a host of its own: a network namespace whose only way out
// is a veth pair into a bridge on the host, where the link's relays listen.
// A node can reach the registry and the repository's file server through
// the link and nothing else, as a worker node behind its site's uplink.

const (
	// netPrefix is the benchmark's own network, inside this machine: the
	// bridge holds .1, nodes take .2 and up.
	netPrefix = "10.231.0."
	netMask   = 24
	// maxNodes is how many nodes the subnet holds.
	maxNodes = 250
)

// network is the bridge that nodes attach to.
type network struct {
	bridge string
	// used holds the host numbers of the nodes' addresses in use.
	used map[int]bool
}

// newNetwork creates the bridge with the host's address on it.
func newNetwork() (_ *network, retErr error) {
	token, err := randomToken()
	if err != nil {
		return nil, err
	}
	n := &network{bridge: "cvb" + token, used: make(map[int]bool)}
	if err := ipCmd("link", "add", n.bridge, "type", "bridge"); err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			retErr = errors.Join(retErr, n.close())
		}
	}()
	if err := ipCmd("addr", "add", n.hostIP()+"/"+fmt.Sprint(netMask), "dev", n.bridge); err != nil {
		return nil, err
	}
	if err := ipCmd("link", "set", n.bridge, "up"); err != nil {
		return nil, err
	}
	return n, nil
}

// hostIP is the address nodes reach the relays at.
func (n *network) hostIP() string { return netPrefix + "1" }

// listen listens on a free port of the host's address on the bridge.
func (n *network) listen() (net.Listener, error) {
	return net.Listen("tcp", n.hostIP()+":0")
}

// close removes the bridge. The nodes' namespaces must be gone already.
func (n *network) close() error {
	return ipCmd("link", "del", n.bridge)
}

// netns is one node's network namespace.
type netns struct {
	net  *network
	name string
	host int
	ip   string
}

// addNode creates a namespace with a veth pair into the bridge and returns
// it. It is removed with remove.
func (n *network) addNode() (_ *netns, retErr error) {
	hostNum := 2
	for n.used[hostNum] {
		hostNum++
	}
	if hostNum > maxNodes+1 {
		return nil, fmt.Errorf("the benchmark network holds at most %d nodes at once", maxNodes)
	}
	token, err := randomToken()
	if err != nil {
		return nil, err
	}
	n.used[hostNum] = true
	ns := &netns{net: n, name: "cvmfsbench-" + token, host: hostNum, ip: fmt.Sprintf("%s%d", netPrefix, hostNum)}
	host, peer := "cvh"+token, "cvn"+token
	if err := ipCmd("netns", "add", ns.name); err != nil {
		delete(n.used, hostNum)
		return nil, err
	}
	defer func() {
		if retErr != nil {
			retErr = errors.Join(retErr, ns.remove())
		}
	}()
	steps := [][]string{
		{"link", "add", host, "type", "veth", "peer", "name", peer},
		{"link", "set", peer, "netns", ns.name},
		{"link", "set", host, "master", n.bridge, "up"},
		{"-n", ns.name, "addr", "add", ns.ip + "/" + fmt.Sprint(netMask), "dev", peer},
		{"-n", ns.name, "link", "set", peer, "up"},
		{"-n", ns.name, "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if err := ipCmd(s...); err != nil {
			// The host end goes with the namespace only once its peer
			// is inside it.
			if ipCmd("link", "show", host) == nil {
				err = errors.Join(err, ipCmd("link", "del", host))
			}
			return nil, err
		}
	}
	return ns, nil
}

// wrap returns argv run inside the namespace's network, and only its
// network: mounts it makes land in the host's mount namespace, where
// dockerd and the plugin see them.
func (ns *netns) wrap(argv []string) []string {
	if ns == nil {
		return argv
	}
	return append([]string{"nsenter", "--net=/run/netns/" + ns.name, "--"}, argv...)
}

// remove deletes the namespace, and with it the veth pair.
func (ns *netns) remove() error {
	if ns == nil {
		return nil
	}
	if err := ipCmd("netns", "del", ns.name); err != nil {
		return err
	}
	delete(ns.net.used, ns.host)
	return nil
}

func ipCmd(args ...string) error {
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func randomToken() (string, error) {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
