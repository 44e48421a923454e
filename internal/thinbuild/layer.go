package thinbuild

import (
	"archive/tar"
	"bytes"
	"fmt"
	"time"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/thinimage"
)

// Metadata of thin.json in the thin layer tar, fixed so that the tar, and
// with it the image, depends on the descriptor alone.
const (
	descriptorMode = 0o644
)

// descriptorTime is thin.json's modification time: the Unix epoch.
var descriptorTime = time.Unix(0, 0).UTC()

// LayerTar returns the thin layer: a tar holding thin.json alone, with
// thinJSON as its content.
func LayerTar(thinJSON []byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     thinimage.DescriptorName,
		Size:     int64(len(thinJSON)),
		Mode:     descriptorMode,
		ModTime:  descriptorTime,
		Format:   tar.FormatUSTAR,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, fmt.Errorf("failed to write thin layer: %w", err)
	}
	if _, err := tw.Write(thinJSON); err != nil {
		return nil, fmt.Errorf("failed to write thin layer: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("failed to write thin layer: %w", err)
	}
	return buf.Bytes(), nil
}
