package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/docker/go-connections/sockets"
)

// probeTimeout bounds the dial that checks whether a process still serves
// on an existing socket.
const probeTimeout = time.Second

// pluginSocket is the socket the plugin listens on.
type pluginSocket struct {
	path     string
	listener net.Listener
	// created identifies the socket file this process made, so that it
	// removes its own socket on exit and never one that replaced it.
	created fs.FileInfo
}

// listenSocket listens on a unix socket at path, readable and writable by
// root only. A socket file left by a plugin that died is removed first;
// one that a live process still answers on, or a file at path that is not
// a socket, makes it fail.
func listenSocket(path string) (*pluginSocket, error) {
	if err := clearStaleSocket(path); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("failed to create socket directory: %w", err)
	}

	l, err := sockets.NewUnixSocketWithOpts(path, sockets.WithChmod(0o660))
	if err != nil {
		return nil, fmt.Errorf("failed to listen on %s: %w", path, err)
	}
	// A listener that unlinks its path on close would remove whatever
	// socket is there by then; Close removes only the one made here.
	if ul, ok := l.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(false)
	}

	created, err := os.Lstat(path)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("failed to inspect new socket: %w", err), l.Close())
	}
	return &pluginSocket{path: path, listener: l, created: created}, nil
}

// clearStaleSocket removes a socket at path that nothing answers on.
func clearStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to inspect socket path: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket: refusing to replace it", path)
	}

	conn, err := net.DialTimeout("unix", path, probeTimeout)
	if err == nil {
		return errors.Join(
			fmt.Errorf("another process is serving on %s: stop it before starting this plugin", path),
			conn.Close())
	}
	// Only a refused connection shows that no process holds the socket;
	// anything else (a full backlog, no permission) may hide a live one.
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("failed to check whether a process serves on %s: %w", path, err)
	}

	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("failed to remove stale socket: %w", err)
	}
	return nil
}

// Close stops listening and removes the socket file, unless another file
// has replaced it in the meantime.
func (s *pluginSocket) Close() error {
	err := s.listener.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}

	fi, serr := os.Lstat(s.path)
	if errors.Is(serr, fs.ErrNotExist) || (serr == nil && !os.SameFile(fi, s.created)) {
		return err
	}
	if serr != nil {
		return errors.Join(err, fmt.Errorf("failed to inspect socket: %w", serr))
	}
	if rerr := os.Remove(s.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		return errors.Join(err, fmt.Errorf("failed to remove socket: %w", rerr))
	}
	return err
}
