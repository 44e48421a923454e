package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/test/dockertest"
)

// The repository's file server. A node reads thin image layers the way a
// CernVM-FS client does: lazily, one request per file it opens, keeping
// symbolic links, owners and modes. Of the network file systems Debian
// packages, sshfs over an sshd on loopback does that here (the kernel has
// no NFS, and httpdirfs loses links and modes), so the repository
// directory is exported by a private sshd and each node mounts it with
// sshfs through the shaped link.

const (
	sshdBinary   = "/usr/sbin/sshd"
	sshKeygen    = "/usr/bin/ssh-keygen"
	sshfsBinary  = "/usr/bin/sshfs"
	fusermount   = "/usr/bin/fusermount3"
	sshdStopWait = 5 * time.Second
)

// fileServer is a private sshd that serves one directory tree over SFTP.
type fileServer struct {
	dir  string // keys, configuration and log
	addr string // 127.0.0.1:port
	proc *dockertest.Process
}

// startFileServer starts an sshd on a free loopback port that lets root in
// with a key made for it, and nothing else.
func startFileServer(dir string) (_ *fileServer, retErr error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	for _, k := range []string{"host_key", "client_key"} {
		p := filepath.Join(dir, k)
		if _, err := os.Stat(p); err == nil {
			continue
		}
		if out, err := exec.Command(sshKeygen, "-q", "-t", "ed25519", "-N", "", "-f", p).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("ssh-keygen: %w: %s", err, out)
		}
	}
	pub, err := os.ReadFile(filepath.Join(dir, "client_key.pub"))
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	// sshd refuses to start without its privilege separation directory.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return nil, err
	}
	config := strings.Join([]string{
		"ListenAddress 127.0.0.1:" + fmt.Sprint(port),
		"HostKey " + filepath.Join(dir, "host_key"),
		"AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"),
		"PermitRootLogin prohibit-password",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"UsePAM no",
		"StrictModes no",
		"Subsystem sftp internal-sftp",
		"PidFile none",
		"",
	}, "\n")
	cfgPath := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		return nil, err
	}
	p, err := dockertest.StartProcess("sshd", filepath.Join(dir, "sshd.log"), []string{sshdBinary, "-D", "-e", "-f", cfgPath}, os.Environ())
	if err != nil {
		return nil, err
	}
	s := &fileServer{dir: dir, addr: fmt.Sprintf("127.0.0.1:%d", port), proc: p}
	defer func() {
		if retErr != nil {
			retErr = errors.Join(retErr, s.stop())
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("tcp", s.addr); err == nil {
			return s, c.Close()
		}
		if p.Exited() || time.Now().After(deadline) {
			log, _ := os.ReadFile(p.LogPath())
			return nil, fmt.Errorf("sshd did not start on %s: %s", s.addr, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *fileServer) stop() error { return s.proc.Stop(sshdStopWait) }

// mount mounts remote, a directory on the server, on target through addr
// (the server itself or a relay in front of it), from the network
// namespace ns (nil for the host's), read-only and without
// sshfs's own caches beyond the kernel's, so that every file a node opens
// is fetched once, as a CernVM-FS client fetches it.
func (s *fileServer) mount(ns *netns, addr, remote, target string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	args := []string{sshfsBinary,
		"root@" + host + ":" + remote, target,
		"-p", port,
		"-o", "ro,allow_other,default_permissions",
		"-o", "IdentityFile=" + filepath.Join(s.dir, "client_key"),
		"-o", "StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null,LogLevel=ERROR",
		// Image layers hold absolute symbolic links, which the kernel
		// resolves inside the container's root, as it does for a layer
		// on CernVM-FS. Debian's sshfs refuses to read links that are
		// absolute or hold "..", unless told not to.
		"-o", "no_contain_symlinks",
		// The files do not change while mounted, as a repository revision
		// does not: keep what was fetched for the life of the mount.
		"-o", "kernel_cache,entry_timeout=3600,attr_timeout=3600,negative_timeout=3600",
	}
	args = ns.wrap(args)
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		return fmt.Errorf("sshfs %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// unmount unmounts a file system mounted by mount.
func unmountFuse(target string) error {
	err := syscall.Unmount(target, 0)
	if errors.Is(err, syscall.EBUSY) {
		err = syscall.Unmount(target, syscall.MNT_DETACH)
	}
	if err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("failed to unmount %s: %w", target, err)
	}
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
