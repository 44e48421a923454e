package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/imageref"
)

// openRegistry opens an image in a registry. Registries on loopback and
// private addresses are spoken to over plain HTTP, as Docker does by
// default; all others over HTTPS. A multi-platform image gives the image
// of the platform docker2cvmfs runs on.
func openRegistry(ctx context.Context, ref imageref.Reference, opts Options) (*Image, error) {
	r, err := name.ParseReference(ref.Name)
	if err != nil {
		return nil, fmt.Errorf("failed to parse image reference %q: %w", ref.Name, err)
	}

	img, err := remote.Image(r, RemoteOptions(ctx, opts.Keychain)...)
	if err != nil {
		return nil, registryError(r, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("failed to read the configuration of %s: %w", r, err)
	}
	remoteLayers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("failed to read the manifest of %s: %w", r, err)
	}

	layers := make([]Layer, len(remoteLayers))
	for i, l := range remoteLayers {
		if i >= len(cfg.RootFS.DiffIDs) {
			break // newImage reports the mismatch
		}
		size, err := l.Size()
		if err != nil {
			return nil, fmt.Errorf("failed to read the size of layer %d of %s: %w", i+1, r, err)
		}
		l := l
		layers[i] = Layer{
			DiffID: cfg.RootFS.DiffIDs[i],
			Size:   size,
			// Compressed verifies the blob against its digest as it is read.
			open: func() (io.ReadCloser, error) { return l.Compressed() },
		}
	}
	return newImage(cfg, layers, registryOrigin(r), nil)
}

// RemoteOptions are the options of every registry call: the context, the
// credentials and the platform.
func RemoteOptions(ctx context.Context, keychain authn.Keychain) []remote.Option {
	if keychain == nil {
		keychain = authn.DefaultKeychain
	}
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(keychain),
		remote.WithPlatform(v1.Platform{OS: "linux", Architecture: runtime.GOARCH}),
	}
}

// registryOrigin writes where an image came from as the first thin image
// tools did: "<repository>:<tag>@<scheme>://<registry>/v2".
func registryOrigin(r name.Reference) string {
	reg := r.Context().Registry
	sep := ":"
	if _, ok := r.(name.Digest); ok {
		sep = "@"
	}
	return r.Context().RepositoryStr() + sep + r.Identifier() + "@" + reg.Scheme() + "://" + reg.RegistryStr() + "/v2"
}

// registryError turns a registry's refusal into an error that says what was
// refused; a missing image matches ErrNotFound.
func registryError(r name.Reference, err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch terr.StatusCode {
		case http.StatusNotFound:
			return fmt.Errorf("image %s is not in registry %s: %w: %w", r, r.Context().RegistryStr(), ErrNotFound, err)
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("registry %s refused access to %s (log in with `docker login %s`): %w",
				r.Context().RegistryStr(), r, r.Context().RegistryStr(), err)
		}
		for _, d := range terr.Errors {
			if d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode {
				return fmt.Errorf("image %s is not in registry %s: %w: %w", r, r.Context().RegistryStr(), ErrNotFound, err)
			}
		}
	}
	return fmt.Errorf("failed to read image %s from registry %s: %w", r, r.Context().RegistryStr(), err)
}
