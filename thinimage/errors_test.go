package thinimage

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
	"testing"
)

func TestDescriptorErrorMessage(t *testing.T) {
	cause := errors.New("cause")
	tests := []struct {
		name string
		err  *DescriptorError
		want string
	}{
		{"field and reason", &DescriptorError{Field: "layers[2].url", Reason: "is wrong"}, `thin image descriptor: field "layers[2].url": is wrong`},
		{"path", &DescriptorError{Path: "/x/thin.json", Field: "version", Reason: "is wrong"}, `thin image descriptor /x/thin.json: field "version": is wrong`},
		{"document", &DescriptorError{Reason: "is empty"}, "thin image descriptor: is empty"},
		{"reason hides the cause", &DescriptorError{Field: "f", Reason: "is wrong", Err: cause}, `thin image descriptor: field "f": is wrong`},
		{"cause without reason", &DescriptorError{Field: "f", Err: cause}, `thin image descriptor: field "f": cause`},
		{"nothing", &DescriptorError{}, "thin image descriptor: invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
			if errors.Unwrap(tt.err) != tt.err.Err {
				t.Errorf("Unwrap does not return Err")
			}
		})
	}
}

func TestLayerErrorMessage(t *testing.T) {
	base := LayerError{
		Index:      2,
		Digest:     "sha256:" + hexA,
		URL:        urlA,
		Repository: "unpacked.cern.ch",
		Dir:        "/cvmfs/unpacked.cern.ch/layers/" + hexA,
	}
	missing := &fs.PathError{Op: "stat", Path: base.Dir, Err: fs.ErrNotExist}
	tests := []struct {
		name   string
		err    error
		mode   fs.FileMode
		wantIs error
		want   string
	}{
		{
			name:   "missing",
			err:    missing,
			wantIs: fs.ErrNotExist,
			want: "layer 3 of the thin image (digest 5f70bf18a086, " + urlA + ") is missing: " + base.Dir +
				" does not exist; check that the CernVM-FS repository unpacked.cern.ch is mounted and holds this layer",
		},
		{
			name:   "socket",
			err:    &notDirError{path: base.Dir, mode: fs.ModeSocket},
			wantIs: ErrNotDirectory,
			want: "layer 3 of the thin image (digest 5f70bf18a086, " + urlA + ") is not a directory: " + base.Dir +
				" is a socket; check that the url names the layer's directory",
		},
		{
			name:   "device",
			err:    &notDirError{path: base.Dir, mode: fs.ModeDevice | fs.ModeCharDevice},
			wantIs: ErrNotDirectory,
			want: "layer 3 of the thin image (digest 5f70bf18a086, " + urlA + ") is not a directory: " + base.Dir +
				" is a device; check that the url names the layer's directory",
		},
		{
			name:   "outside",
			err:    &outsideRootError{path: base.Dir, target: "/etc", root: "/cvmfs"},
			wantIs: ErrOutsideRoot,
			want: "layer 3 of the thin image (digest 5f70bf18a086, " + urlA + ") leads out of the CernVM-FS root: " + base.Dir +
				" leads to /etc, which is outside /cvmfs; a layer must stay inside the root",
		},
		{
			name:   "dead client",
			err:    &fs.PathError{Op: "stat", Path: base.Dir, Err: syscall.ENOTCONN},
			wantIs: syscall.ENOTCONN,
			want: "layer 3 of the thin image (digest 5f70bf18a086, " + urlA + ") cannot be reached: stat " + base.Dir +
				": transport endpoint is not connected; the CernVM-FS client of repository unpacked.cern.ch has died: " +
				"unmount the repository on the host (umount -l) so that it is mounted again",
		},
		{
			name:   "unreachable",
			err:    &fs.PathError{Op: "stat", Path: base.Dir, Err: os.ErrPermission},
			wantIs: fs.ErrPermission,
			want: "layer 3 of the thin image (digest 5f70bf18a086, " + urlA + ") cannot be reached: stat " + base.Dir +
				": permission denied; check that the CernVM-FS repository unpacked.cern.ch is mounted and holds this layer",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := base
			e.Err = tt.err
			if got := e.Error(); got != tt.want {
				t.Errorf("message:\n got %s\nwant %s", got, tt.want)
			}
			if !errors.Is(&e, tt.wantIs) {
				t.Errorf("errors.Is(%v) = false", tt.wantIs)
			}
			if errors.Unwrap(&e) != tt.err {
				t.Errorf("Unwrap does not return Err")
			}
		})
	}
}

func TestShortDigest(t *testing.T) {
	tests := []struct{ in, want string }{
		{hexA, "5f70bf18a086"},
		{"sha256:" + hexA, "5f70bf18a086"},
		{"abc", "abc"},
		{"sha512:abc", "abc"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := shortDigest(tt.in); got != tt.want {
				t.Errorf("shortDigest(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
