// Package graphdriver holds what every backend of the plugin shares: the
// Driver contract that dockerd's graphdriver protocol maps onto, the wire
// types of that protocol, and the HTTP handlers that serve it on a plugin
// socket.
//
// dockerd talks to a graphdriver plugin with JSON requests over HTTP on a
// unix socket (the "docker.graphdriver/1.0" interface). Two endpoints carry
// raw tar streams instead of JSON: Diff answers with the layer's tar, and
// ApplyDiff receives one as its request body with the layer id and parent in
// the query string. The handlers here stream both; no layer is ever held in
// memory whole.
package graphdriver

import (
	"io"
)

// ChangeKind says how a path differs between a layer and its parent. The
// numbers are the ones dockerd puts on the wire and must not change.
type ChangeKind int

const (
	// ChangeModify marks a path present in both, with different content or
	// metadata.
	ChangeModify ChangeKind = 0
	// ChangeAdd marks a path that only the layer has.
	ChangeAdd ChangeKind = 1
	// ChangeDelete marks a path the layer removes from its parent.
	ChangeDelete ChangeKind = 2
)

// Change is one entry of a layer's change list, as dockerd expects it.
type Change struct {
	Path string
	Kind ChangeKind
}

// Capabilities are the driver features dockerd asks for after Init.
type Capabilities struct {
	// ReproducesExactDiffs tells dockerd that Diff reproduces the exact tar
	// that ApplyDiff received, so it need not keep tar-split metadata.
	ReproducesExactDiffs bool
}

// CreateOpts carries the optional arguments of Create and CreateReadWrite.
type CreateOpts struct {
	MountLabel string
	StorageOpt map[string]string
}

// IDMap is one range of a user-namespace identity mapping, as dockerd sends
// it in Init when user-namespace remapping is on.
type IDMap struct {
	ContainerID int `json:"ContainerID"`
	HostID      int `json:"HostID"`
	Size        int `json:"Size"`
}

// InitOptions are the arguments of GraphDriver.Init.
type InitOptions struct {
	// Home is the directory the driver owns: <data-root>/<driver name> for a
	// legacy plugin, <propagatedMount>/<driver name> for a managed one.
	Home string
	// Opts are the daemon's --storage-opt values, "key=value" each.
	Opts    []string
	UIDMaps []IDMap
	GIDMaps []IDMap
}

// Driver is what a backend implements. Layer ids are opaque strings chosen
// by dockerd; a parent of "" means the layer has none.
//
// Every method must be safe for concurrent use. Methods that fail leave
// nothing half-made: a failed Create leaves no layer, a failed ApplyDiff
// leaves the layer as it was before the call.
type Driver interface {
	// String names the backend ("overlay2", "aufs").
	String() string

	// Status lists human-readable facts for `docker info`.
	Status() [][2]string

	// GetMetadata returns backend-specific facts about a layer for
	// `docker inspect` (GraphDriver.Data).
	GetMetadata(id string) (map[string]string, error)

	// Cleanup is called when dockerd shuts down. It releases whatever the
	// driver holds that would not survive the daemon.
	Cleanup() error

	// Create makes a read-only layer on top of parent.
	Create(id, parent string, opts CreateOpts) error

	// CreateReadWrite makes a writable layer (a container's) on top of
	// parent.
	CreateReadWrite(id, parent string, opts CreateOpts) error

	// Remove deletes a layer and everything the driver holds for it.
	Remove(id string) error

	// Get mounts the layer's full file tree if needed and returns the
	// directory holding it. Every Get is matched by a Put.
	Get(id, mountLabel string) (string, error)

	// Put releases one Get; the last one unmounts.
	Put(id string) error

	// Exists reports whether the layer exists.
	Exists(id string) bool

	// Diff returns a tar stream of the layer's changes against parent, with
	// deletions as AUFS-style ".wh." entries.
	Diff(id, parent string) (io.ReadCloser, error)

	// Changes lists the layer's changes against parent.
	Changes(id, parent string) ([]Change, error)

	// ApplyDiff unpacks a layer tar (AUFS-style whiteouts) into the layer
	// and returns the number of bytes the layer's content takes.
	ApplyDiff(id, parent string, diff io.Reader) (int64, error)

	// DiffSize returns the size of the layer's changes against parent.
	DiffSize(id, parent string) (int64, error)

	// Capabilities reports the driver's features.
	Capabilities() Capabilities
}
