package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/engine"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/imageref"
)

// openDaemon streams the image out of the daemon into a temporary file and
// opens that as an archive. The archive must be seekable because Docker
// writes manifest.json, the index, after the layers; the file is removed
// when the image is closed, or at once if opening fails.
func openDaemon(ctx context.Context, ref imageref.Reference, opts Options) (img *Image, retErr error) {
	client := opts.Engine
	if client == nil {
		var err error
		if client, err = engine.FromEnv(); err != nil {
			return nil, err
		}
	}

	stream, err := client.Save(ctx, ref.Name)
	if err != nil {
		if errors.Is(err, engine.ErrNotFound) {
			return nil, fmt.Errorf("image %s is not in the docker daemon at %s: %w: %w", ref.Name, client.Host(), ErrNotFound, err)
		}
		return nil, fmt.Errorf("failed to read image %s from the docker daemon: %w", ref.Name, err)
	}
	defer stream.Close()

	f, err := os.CreateTemp(opts.TempDir, "docker2cvmfs-save-*.tar")
	if err != nil {
		return nil, fmt.Errorf("failed to create a temporary file for image %s: %w", ref.Name, err)
	}
	tmp := f.Name()
	defer func() {
		if retErr != nil {
			os.Remove(tmp)
		}
	}()

	var counter ByteCounter
	var w io.Writer = f
	if opts.SaveProgress != nil {
		counter = opts.SaveProgress(ref.Name)
		w = io.MultiWriter(f, counter)
	}
	_, err = io.Copy(w, stream)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if counter != nil {
		counter.Done(err)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read image %s from the docker daemon into %s: %w", ref.Name, tmp, err)
	}

	img, err = OpenArchive(tmp, "", string(imageref.Daemon)+":"+ref.Name)
	if err != nil {
		return nil, fmt.Errorf("image %s from the docker daemon: %w", ref.Name, err)
	}
	closeArchive := img.close
	img.close = func() error {
		return errors.Join(closeArchive(), os.Remove(tmp))
	}
	return img, nil
}
