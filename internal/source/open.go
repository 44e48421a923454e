package source

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/engine"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/imageref"
)

// Options say how images are fetched.
type Options struct {
	// Engine is the daemon images of the docker-daemon transport come
	// from; when nil, the one DOCKER_HOST names.
	Engine *engine.Client
	// Keychain gives registry credentials; when nil, those `docker login`
	// stored ($DOCKER_CONFIG/config.json).
	Keychain authn.Keychain
	// TempDir receives the copy of an image streamed out of the daemon;
	// empty means the system's temporary directory.
	TempDir string
	// SaveProgress, when set, counts the bytes streamed out of the daemon.
	SaveProgress func(ref string) ByteCounter
}

// ByteCounter counts bytes as they are written to it and is told when the
// stream ended.
type ByteCounter interface {
	Write(p []byte) (int, error)
	Done(err error)
}

// Open opens the image ref names. The caller closes it.
func Open(ctx context.Context, ref imageref.Reference, opts Options) (*Image, error) {
	switch ref.Transport {
	case imageref.Daemon:
		return openDaemon(ctx, ref, opts)
	case imageref.Registry:
		return openRegistry(ctx, ref, opts)
	case imageref.Archive:
		return OpenArchive(ref.Path, ref.Name, string(imageref.Archive)+":"+absPath(ref.Path)+suffix(ref.Name))
	case imageref.Layout:
		return openLayout(ref)
	default:
		return nil, fmt.Errorf("image reference %q: transport %q cannot be read", ref, ref.Transport)
	}
}

// suffix returns ":name", or "" for an empty name.
func suffix(name string) string {
	if name == "" {
		return ""
	}
	return ":" + name
}
