package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/moby/go-archive/compression"
	"github.com/spf13/cobra"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/layercheck"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/source"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/thinbuild"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/unpack"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/thinimage"
)

// maxProblemsShown bounds the lines a layer's problems take in the report.
const maxProblemsShown = 20

// errCheckFailed is returned when the check found problems; the report
// already said which.
var errCheckFailed = errors.New("check found problems")

type checkOptions struct {
	cvmfsRoot      string
	source         string
	whiteoutFormat string
}

func newCheckCommand() *cobra.Command {
	var o checkOptions
	cmd := &cobra.Command{
		Use:   "check THIN_IMAGE [OPTIONS]",
		Short: "Verify a thin image against its repository",
		Long: `Check that every layer directory THIN_IMAGE's descriptor lists is in place
below --cvmfs-root. With --source, the regular image it was made from, also
compare each directory with the layer tar it was unpacked from: every entry with
its type, permissions, owner, size and link target, whiteouts and opaque
directories, and nothing left over (a ".wh." file in an overlay-format layer).

Exits with status 0 when everything matches and 1 when anything does not.`,
		Example: `  docker2cvmfs check busybox:thin --cvmfs-root /srv/cvmfs --source busybox:latest`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef(cmd, "check takes one thin image, got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return check(cmd.Context(), cmd, args[0], &o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.cvmfsRoot, "cvmfs-root", thinimage.DefaultRoot, "directory that stands for /cvmfs")
	f.StringVar(&o.source, "source", "",
		"the regular image the thin image was made from, to compare file listings with")
	f.StringVar(&o.whiteoutFormat, "whiteout-format", unpack.Overlay.String(),
		"whiteout format of the layer directories: overlay (make-thin into a directory) "+
			"or aufs (--release-manager)")
	return cmd
}

func check(ctx context.Context, cmd *cobra.Command, thinRef string, o *checkOptions) error {
	format, err := unpack.ParseWhiteoutFormat(o.whiteoutFormat)
	if err != nil {
		return newUsageError(cmd, err)
	}
	root, err := filepath.Abs(o.cvmfsRoot)
	if err != nil {
		return newUsageError(cmd, err)
	}
	w := cmd.OutOrStdout()

	thin, err := openInput(ctx, thinRef, nil)
	if err != nil {
		return err
	}
	defer thin.Close()
	desc, _, err := thinbuild.ReadDescriptor(thin)
	if err != nil {
		return fmt.Errorf("image %s: %w", thinRef, err)
	}
	layers, err := desc.Resolve(root)
	if err != nil {
		return fmt.Errorf("image %s: %w", thinRef, err)
	}

	var src *source.Image
	if o.source != "" {
		if src, err = openInput(ctx, o.source, nil); err != nil {
			return err
		}
		defer src.Close()
	}

	fmt.Fprintf(w, "Thin image %s: %d layers, origin %q\n", thinRef, len(layers), desc.Origin)
	failed := 0
	if src != nil && !sameLayers(desc, src) {
		failed++
		fmt.Fprintf(w, "  the descriptor's layers are not those of %s, in the same order\n", o.source)
	}
	for _, l := range layers {
		ok, err := checkLayer(w, l, len(layers), src, format)
		if err != nil {
			return err
		}
		if !ok {
			failed++
		}
	}

	if failed > 0 {
		fmt.Fprintf(w, "FAILED: %d problem(s) in %d layers\n", failed, len(layers))
		return errCheckFailed
	}
	if src == nil {
		fmt.Fprintln(w, "OK: every layer directory is in place (give --source to compare contents)")
	} else {
		fmt.Fprintln(w, "OK: every layer directory is in place and matches its layer tar")
	}
	return nil
}

// checkLayer reports on one layer and says whether it passed.
func checkLayer(w io.Writer, l thinimage.ResolvedLayer, n int, src *source.Image,
	format unpack.WhiteoutFormat) (bool, error) {
	prefix := fmt.Sprintf("  layer %d/%d %s", l.Index+1, n, l.Digest)
	if err := thinimage.Check([]thinimage.ResolvedLayer{l}); err != nil {
		fmt.Fprintf(w, "%s: %v\n", prefix, err)
		return false, nil
	}
	if src == nil {
		fmt.Fprintf(w, "%s: present at %s\n", prefix, l.Dir)
		return true, nil
	}

	sl, ok := sourceLayer(src, l.Digest)
	if !ok {
		fmt.Fprintf(w, "%s: present at %s, but not a layer of the source image\n", prefix, l.Dir)
		return false, nil
	}
	problems, entries, err := compareLayer(sl, l.Dir, format)
	if err != nil {
		return false, fmt.Errorf("layer %s: %w", l.Digest, err)
	}
	if len(problems) == 0 {
		fmt.Fprintf(w, "%s: %d entries match %s\n", prefix, entries, l.Dir)
		return true, nil
	}
	fmt.Fprintf(w, "%s: %d problem(s) in %s\n", prefix, len(problems), l.Dir)
	for i, p := range problems {
		if i == maxProblemsShown {
			fmt.Fprintf(w, "      ... and %d more\n", len(problems)-i)
			break
		}
		fmt.Fprintf(w, "      %s\n", p)
	}
	return false, nil
}

// compareLayer lists the layer tar and the directory and compares them.
func compareLayer(l source.Layer, dir string,
	format unpack.WhiteoutFormat) ([]layercheck.Problem, int, error) {
	rc, err := l.Open()
	if err != nil {
		return nil, 0, err
	}
	defer rc.Close()
	plain, err := compression.DecompressStream(rc)
	if err != nil {
		return nil, 0, fmt.Errorf("failed to decompress: %w", err)
	}
	defer plain.Close()

	want, implied, err := layercheck.FromTar(plain, format)
	if err != nil {
		return nil, 0, err
	}
	got, err := layercheck.FromDir(dir)
	if err != nil {
		return nil, 0, err
	}
	return layercheck.Compare(want, implied, got, format), len(want), nil
}

// sourceLayer finds the source layer a descriptor digest names.
func sourceLayer(src *source.Image, digest string) (source.Layer, bool) {
	for _, l := range src.Layers {
		if sameDigest(l.DiffID.String(), digest) {
			return l, true
		}
	}
	return source.Layer{}, false
}

// sameLayers reports whether the descriptor lists the source's layers.
func sameLayers(desc *thinimage.Descriptor, src *source.Image) bool {
	if len(desc.Layers) != len(src.Layers) {
		return false
	}
	for i, l := range desc.Layers {
		if !sameDigest(src.Layers[i].DiffID.String(), l.Digest) {
			return false
		}
	}
	return true
}

// sameDigest compares "sha256:<hex>" with a descriptor digest, which may
// lack the prefix.
func sameDigest(diffID, digest string) bool {
	return diffID == digest || strings.TrimPrefix(diffID, "sha256:") == digest
}
