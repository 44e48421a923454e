// Package sink writes the thin image where its output reference points:
// into the Docker daemon (as `docker load` does), to a registry, into a
// `docker save` archive or into an OCI image layout.
package sink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/engine"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/imageref"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/source"
)

// Options say how images are written.
type Options struct {
	// Engine is the daemon images are loaded into; when nil, the one
	// DOCKER_HOST names.
	Engine *engine.Client
	// Keychain gives registry credentials; when nil, those `docker login`
	// stored.
	Keychain authn.Keychain
}

// Write writes img where ref points and returns a line saying what was
// done.
func Write(ctx context.Context, ref imageref.Reference, img v1.Image, opts Options) (string, error) {
	switch ref.Transport {
	case imageref.Daemon:
		return writeDaemon(ctx, ref, img, opts)
	case imageref.Registry:
		return writeRegistry(ctx, ref, img, opts)
	case imageref.Archive:
		return writeArchive(ref, img)
	case imageref.Layout:
		return writeLayout(ref, img)
	default:
		return "", fmt.Errorf("image reference %q: transport %q cannot be written", ref, ref.Transport)
	}
}

// tag parses the name an image is stored under; a name without a tag gets
// "latest", as with docker tag.
func tag(ref imageref.Reference) (name.Tag, error) {
	if ref.Name == "" {
		return name.Tag{}, fmt.Errorf("output %q needs an image name (%s:PATH:NAME[:TAG])", ref, ref.Transport)
	}
	t, err := name.NewTag(ref.Name, name.WeakValidation)
	if err != nil {
		return name.Tag{}, fmt.Errorf("output %q: an image name with a tag is needed, not a digest: %w", ref, err)
	}
	return t, nil
}

// writeDaemon streams the image as a `docker save` archive into the
// daemon's load endpoint.
func writeDaemon(ctx context.Context, ref imageref.Reference, img v1.Image, opts Options) (string, error) {
	t, err := tag(ref)
	if err != nil {
		return "", err
	}
	client := opts.Engine
	if client == nil {
		if client, err = engine.FromEnv(); err != nil {
			return "", err
		}
	}

	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarball.Write(t, img, pw)) }()
	lines, err := client.Load(ctx, pr)
	pr.CloseWithError(errors.New("load ended"))
	if err != nil {
		return "", fmt.Errorf("failed to load thin image %s into the docker daemon: %w", ref.Name, err)
	}
	if len(lines) == 0 {
		return "Loaded image: " + ref.Name, nil
	}
	return lines[len(lines)-1], nil
}

// writeRegistry pushes the image.
func writeRegistry(ctx context.Context, ref imageref.Reference, img v1.Image, opts Options) (string, error) {
	t, err := tag(ref)
	if err != nil {
		return "", err
	}
	if err := remote.Write(t, img, source.RemoteOptions(ctx, opts.Keychain)...); err != nil {
		return "", fmt.Errorf("failed to push thin image to %s: %w", t, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("Pushed %s@%s", t, digest), nil
}

// writeArchive writes a `docker save` archive into a temporary file next to
// the path and renames it into place, so that a failure leaves no partial
// archive.
func writeArchive(ref imageref.Reference, img v1.Image) (_ string, retErr error) {
	t, err := tag(ref)
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp(filepath.Dir(ref.Path), "."+filepath.Base(ref.Path)+".tmp-")
	if err != nil {
		return "", fmt.Errorf("failed to create archive next to %s: %w", ref.Path, err)
	}
	tmp := f.Name()
	defer func() {
		if retErr != nil {
			os.Remove(tmp)
		}
	}()
	err = tarball.Write(t, img, f)
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err != nil {
		return "", fmt.Errorf("failed to write archive %s: %w", ref.Path, err)
	}
	if err := os.Rename(tmp, ref.Path); err != nil {
		return "", fmt.Errorf("failed to write archive %s: %w", ref.Path, err)
	}
	return fmt.Sprintf("Wrote %s to %s", t, ref.Path), nil
}

// writeLayout adds the image to an OCI layout, creating the layout if
// needed, tagged with the reference's name when it has one.
func writeLayout(ref imageref.Reference, img v1.Image) (string, error) {
	p, err := layout.FromPath(ref.Path)
	if err != nil {
		if p, err = layout.Write(ref.Path, empty.Index); err != nil {
			return "", fmt.Errorf("failed to create OCI layout %s: %w", ref.Path, err)
		}
	}
	if ref.Name == "" {
		err = p.AppendImage(img)
	} else {
		// A tag names one image: the new one replaces an image it named.
		err = p.ReplaceImage(img, match.Annotation(source.RefNameAnnotation, ref.Name),
			layout.WithAnnotations(map[string]string{source.RefNameAnnotation: ref.Name}))
	}
	if err != nil {
		return "", fmt.Errorf("failed to add thin image to OCI layout %s: %w", ref.Path, err)
	}
	return "Wrote thin image to OCI layout " + ref.Path, nil
}
