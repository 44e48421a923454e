package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/imageref"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/progress"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/sink"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/thinbuild"
)

func newMakeThinCommand() *cobra.Command {
	var o conversionOptions
	cmd := &cobra.Command{
		Use:   "make-thin -i IMAGE -o THIN_IMAGE -r REPOSITORY [OPTIONS]",
		Short: "Unpack an image's layers into a repository and write its thin image",
		Long: `Unpack each layer of IMAGE into the repository, as
<cvmfs-root>/<repository>/<subdirectory>/<diff ID hex>, and write THIN_IMAGE,
an image with IMAGE's whole configuration whose only layer holds thin.json.

A layer already in the repository is used as it is. Layers are unpacked into a
temporary directory and renamed into place, so an interrupted run leaves no
half layer behind. The descriptor is also recorded in the repository, below
.thin/descriptors, for 'docker2cvmfs gc'.

With --release-manager the layers are written in a cvmfs_server transaction
that is published at the end, or aborted on failure.`,
		Example: `  docker2cvmfs make-thin -i busybox:latest -o busybox:thin -r unpacked.cern.ch
  docker2cvmfs make-thin -i docker://127.0.0.1:5000/app:1.0 -o docker-archive:/tmp/thin.tar:app:thin \
      -r unpacked.cern.ch --cvmfs-root /srv/cvmfs`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "input-reference", "output-reference", "repository"); err != nil {
				return err
			}
			return makeThin(cmd.Context(), cmd, &o)
		},
	}
	o.addFlags(cmd)
	return cmd
}

// makeThin unpacks the layers, records the descriptor, commits the change
// and writes the thin image, in that order: the thin image is written only
// once every layer it lists is in place.
func makeThin(ctx context.Context, cmd *cobra.Command, o *conversionOptions) (retErr error) {
	out, err := imageref.Parse(o.output)
	if err != nil {
		return newUsageError(cmd, fmt.Errorf("--output-reference: %w", err))
	}
	repo, err := o.repo()
	if err != nil {
		return newUsageError(cmd, err)
	}
	printer, err := progress.New(cmd.ErrOrStderr(), progress.Mode(o.progress))
	if err != nil {
		return newUsageError(cmd, err)
	}
	pub := o.publisher(repo)

	img, err := openInput(ctx, o.input, printer)
	if err != nil {
		return err
	}
	defer img.Close()

	_, thinJSON, err := thinbuild.Descriptor(img, repo, pub.WhiteoutFormat())
	if err != nil {
		return err
	}

	change, err := pub.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if retErr != nil {
			if err := change.Abort(ctx); err != nil {
				retErr = errors.Join(retErr, fmt.Errorf("failed to abort: %w", err))
			}
		}
	}()

	printer.Printf("Unpacking %d layers of %s into %s", len(img.Layers), img.Origin, pub.Describe())
	unpacked := 0
	for i, l := range img.Layers {
		task := printer.Start(fmt.Sprintf("layer %d/%d %s", i+1, len(img.Layers), shortID(l.DiffID.Hex)), l.Size)
		existed, err := repo.AddLayer(ctx, l, pub.WhiteoutFormat(), task)
		switch {
		case err != nil:
			task.Done("", err)
			return err
		case existed:
			task.Done("already present", nil)
		default:
			unpacked++
			task.Done("unpacked", nil)
		}
	}

	record, err := repo.WriteRecord(thinJSON)
	if err != nil {
		return err
	}
	if err := change.Commit(ctx); err != nil {
		return err
	}

	thin, err := thinbuild.Image(img.Config, thinJSON, img.Origin)
	if err != nil {
		return err
	}
	done, err := sink.Write(ctx, out, thin, sink.Options{})
	if err != nil {
		return err
	}
	id, err := thin.ConfigName()
	if err != nil {
		return err
	}

	printer.Printf("Recorded descriptor in %s", record)
	printer.Printf("%d layers unpacked, %d already present", unpacked, len(img.Layers)-unpacked)
	fmt.Fprintln(cmd.OutOrStdout(), done)
	fmt.Fprintf(cmd.OutOrStdout(), "Thin image ID: %s\n", id)
	return nil
}

// shortID shortens a hex digest for progress lines, as docker does.
func shortID(hex string) string {
	if len(hex) > 12 {
		return hex[:12]
	}
	return hex
}
