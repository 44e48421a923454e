package thinimage

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	d := &Descriptor{
		Version: "1.0",
		Layers: []Layer{
			{Digest: hexA, URL: urlA},
			{Digest: "sha256:" + hexB, URL: "cvmfs://other.example.org/a/../layers/b/"},
			{Digest: hexA, URL: urlA},
		},
	}
	tests := []struct {
		name string
		root string
		want []ResolvedLayer
	}{
		{
			name: "default root",
			root: "",
			want: []ResolvedLayer{
				{0, hexA, urlA, "unpacked.cern.ch", "/cvmfs/unpacked.cern.ch/layers/" + hexA},
				{1, "sha256:" + hexB, "cvmfs://other.example.org/a/../layers/b/", "other.example.org", "/cvmfs/other.example.org/layers/b"},
				{2, hexA, urlA, "unpacked.cern.ch", "/cvmfs/unpacked.cern.ch/layers/" + hexA},
			},
		},
		{
			name: "configured root, not clean",
			root: "/srv//cvmfs/",
			want: []ResolvedLayer{
				{0, hexA, urlA, "unpacked.cern.ch", "/srv/cvmfs/unpacked.cern.ch/layers/" + hexA},
				{1, "sha256:" + hexB, "cvmfs://other.example.org/a/../layers/b/", "other.example.org", "/srv/cvmfs/other.example.org/layers/b"},
				{2, hexA, urlA, "unpacked.cern.ch", "/srv/cvmfs/unpacked.cern.ch/layers/" + hexA},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := d.Resolve(tt.root)
			if err != nil {
				t.Fatalf("Resolve failed: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Resolve =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestResolveScratch(t *testing.T) {
	d, err := Parse([]byte(descriptorJSON("1.0", "[]")))
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.Resolve(DefaultRoot)
	if err != nil || len(got) != 0 {
		t.Fatalf("Resolve = %+v, %v; want no layers", got, err)
	}
	if len(TopFirst(got)) != 0 || len(Repositories(got)) != 0 || Check(got) != nil {
		t.Fatal("a scratch image must have no lower directories, no repositories and pass Check")
	}
}

func TestResolveRefuses(t *testing.T) {
	tests := []struct {
		name      string
		d         Descriptor
		root      string
		wantField string // empty for an error that is not a *DescriptorError
		want      string
	}{
		{
			name: "relative root",
			d:    Descriptor{Layers: []Layer{{Digest: hexA, URL: urlA}}},
			root: "cvmfs",
			want: `cvmfs root "cvmfs" is not an absolute path`,
		},
		{
			name:      "escaping url built by hand",
			d:         Descriptor{Layers: []Layer{{Digest: hexA, URL: "cvmfs://repo/../../etc"}}},
			root:      DefaultRoot,
			wantField: "layers[0].url",
			want:      `thin image descriptor: field "layers[0].url": path "../../etc" leads out of the repository`,
		},
		{
			name:      "empty digest built by hand",
			d:         Descriptor{Layers: []Layer{{Digest: hexA, URL: urlA}, {Digest: "", URL: urlB}}},
			root:      DefaultRoot,
			wantField: "layers[1].digest",
			want:      `thin image descriptor: field "layers[1].digest": is missing or empty`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.d.Resolve(tt.root)
			if err == nil {
				t.Fatalf("Resolve = %+v, want an error", got)
			}
			if err.Error() != tt.want {
				t.Errorf("message:\n got %s\nwant %s", err, tt.want)
			}
			var descErr *DescriptorError
			if errors.As(err, &descErr) != (tt.wantField != "") {
				t.Fatalf("error %v: *DescriptorError expected %v", err, tt.wantField != "")
			}
			if descErr != nil && descErr.Field != tt.wantField {
				t.Errorf("Field = %q, want %q", descErr.Field, tt.wantField)
			}
		})
	}
}

// resolved returns resolved layers named by their directory's last element,
// for tests of the pure helpers.
func resolved(names ...string) []ResolvedLayer {
	out := make([]ResolvedLayer, len(names))
	for i, n := range names {
		out[i] = ResolvedLayer{Index: i, Repository: "repo", Dir: "/cvmfs/repo/" + n}
	}
	return out
}

func TestTopFirst(t *testing.T) {
	tests := []struct {
		name string
		in   []ResolvedLayer
		want []int // the Index of each result, in order
	}{
		{"none", nil, []int{}},
		{"one", resolved("a"), []int{0}},
		{"reversed", resolved("base", "middle", "top"), []int{2, 1, 0}},
		{"duplicate keeps the uppermost", resolved("a", "b", "a"), []int{2, 1}},
		{"adjacent duplicates", resolved("a", "a", "b"), []int{2, 1}},
		{"many duplicates", resolved("e", "x", "e", "y", "e"), []int{4, 3, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := append([]ResolvedLayer(nil), tt.in...)
			got := TopFirst(tt.in)
			idx := make([]int, len(got))
			for i, l := range got {
				idx[i] = l.Index
			}
			if !reflect.DeepEqual(idx, tt.want) {
				t.Errorf("TopFirst indices = %v, want %v", idx, tt.want)
			}
			if !reflect.DeepEqual(tt.in, orig) {
				t.Errorf("TopFirst modified its argument")
			}
		})
	}
}

// TestLowerDirOrder follows rule 2 from a parsed descriptor to the list of
// directories a mount gets: the last listed layer is the uppermost.
func TestLowerDirOrder(t *testing.T) {
	d, err := Parse([]byte(descriptorJSON("1.0", "["+
		layerJSON("0a", "cvmfs://r/base")+", "+
		layerJSON("0b", "cvmfs://r/middle")+", "+
		layerJSON("0c", "cvmfs://r/top")+"]")))
	if err != nil {
		t.Fatal(err)
	}
	layers, err := d.Resolve("/cvmfs")
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, l := range TopFirst(layers) {
		dirs = append(dirs, l.Dir)
	}
	if want := "/cvmfs/r/top:/cvmfs/r/middle:/cvmfs/r/base"; strings.Join(dirs, ":") != want {
		t.Fatalf("lower dirs = %s, want %s", strings.Join(dirs, ":"), want)
	}
}

func TestRepositories(t *testing.T) {
	tests := []struct {
		name string
		in   []ResolvedLayer
		want []string
	}{
		{"none", nil, []string{}},
		{"one repeated", []ResolvedLayer{{Repository: "a"}, {Repository: "a"}}, []string{"a"}},
		{"sorted and distinct", []ResolvedLayer{{Repository: "c"}, {Repository: "a"}, {Repository: "b"}, {Repository: "a"}}, []string{"a", "b", "c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Repositories(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Repositories = %q, want %q", got, tt.want)
			}
		})
	}
}

// checkFixture is a CernVM-FS root in a temporary directory with one
// repository, "repo", and a directory outside the root.
type checkFixture struct {
	root    string // <tmp>/cvmfs
	outside string // <tmp>/host, a directory outside the root
}

func newCheckFixture(t *testing.T) checkFixture {
	t.Helper()
	tmp := t.TempDir()
	f := checkFixture{root: filepath.Join(tmp, "cvmfs"), outside: filepath.Join(tmp, "host")}
	for _, dir := range []string{
		filepath.Join(f.root, "repo", "layers", "present"),
		filepath.Join(f.root, "repo", "layers", "other"),
		filepath.Join(f.root, "second", "layers", "x"),
		f.outside,
	} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range map[string]string{
		"repo/layers/relative-link": "other",
		"repo/layers/absolute-link": filepath.Join(f.root, "repo", "layers", "other"),
		"repo/layers/cross-repo":    "../../second/layers/x",
		"repo/layers/dangling":      "nowhere",
		"repo/layers/out":           f.outside,
		"repo/layers/out-relative":  "../../../host",
		"repo/layers/to-file":       "file",
	} {
		if err := os.Symlink(target, filepath.Join(f.root, filepath.FromSlash(name))); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(f.root, "repo", "layers", "file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// layers resolves a descriptor listing the given URLs under the fixture's
// root.
func (f checkFixture) layers(t *testing.T, urls ...string) []ResolvedLayer {
	t.Helper()
	d := &Descriptor{Version: "1.0"}
	for _, u := range urls {
		d.Layers = append(d.Layers, Layer{Digest: hexA, URL: u})
	}
	layers, err := d.Resolve(f.root)
	if err != nil {
		t.Fatal(err)
	}
	return layers
}

func TestCheckAccepts(t *testing.T) {
	f := newCheckFixture(t)
	tests := []struct {
		name string
		urls []string
	}{
		{"directories", []string{"cvmfs://repo/layers/present", "cvmfs://repo/layers/other"}},
		{"relative link to a directory", []string{"cvmfs://repo/layers/relative-link"}},
		{"absolute link inside the root", []string{"cvmfs://repo/layers/absolute-link"}},
		{"link into another repository", []string{"cvmfs://repo/layers/cross-repo"}},
		{"same directory twice", []string{"cvmfs://repo/layers/present", "cvmfs://repo/layers/present"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Check(f.layers(t, tt.urls...)); err != nil {
				t.Fatalf("Check failed: %v", err)
			}
		})
	}
}

func TestCheckRefuses(t *testing.T) {
	f := newCheckFixture(t)
	tests := []struct {
		name      string
		urls      []string
		wantIndex int
		wantIs    error // what errors.Is must match
		want      string
	}{
		{
			name:      "missing directory",
			urls:      []string{"cvmfs://repo/layers/present", "cvmfs://repo/layers/absent"},
			wantIndex: 1,
			wantIs:    fs.ErrNotExist,
			want: "layer 2 of the thin image (digest 5f70bf18a086, cvmfs://repo/layers/absent) is missing: " +
				"ROOT/repo/layers/absent does not exist; check that the CernVM-FS repository repo is mounted and holds this layer",
		},
		{
			name:      "repository not mounted",
			urls:      []string{"cvmfs://unmounted.example.org/layers/x"},
			wantIndex: 0,
			wantIs:    fs.ErrNotExist,
			want: "layer 1 of the thin image (digest 5f70bf18a086, cvmfs://unmounted.example.org/layers/x) is missing: " +
				"ROOT/unmounted.example.org/layers/x does not exist; " +
				"check that the CernVM-FS repository unmounted.example.org is mounted and holds this layer",
		},
		{
			name:      "first failure is reported",
			urls:      []string{"cvmfs://repo/layers/absent", "cvmfs://repo/layers/file"},
			wantIndex: 0,
			wantIs:    fs.ErrNotExist,
		},
		{
			name:      "dangling link",
			urls:      []string{"cvmfs://repo/layers/dangling"},
			wantIndex: 0,
			wantIs:    fs.ErrNotExist,
		},
		{
			name:      "file instead of a directory",
			urls:      []string{"cvmfs://repo/layers/present", "cvmfs://repo/layers/file"},
			wantIndex: 1,
			wantIs:    ErrNotDirectory,
			want: "layer 2 of the thin image (digest 5f70bf18a086, cvmfs://repo/layers/file) is not a directory: " +
				"ROOT/repo/layers/file is a regular file; check that the url names the layer's directory",
		},
		{
			name:      "link to a file",
			urls:      []string{"cvmfs://repo/layers/to-file"},
			wantIndex: 0,
			wantIs:    ErrNotDirectory,
		},
		{
			name:      "file in the way",
			urls:      []string{"cvmfs://repo/layers/file/x"},
			wantIndex: 0,
			want: "layer 1 of the thin image (digest 5f70bf18a086, cvmfs://repo/layers/file/x) cannot be reached: " +
				"stat ROOT/repo/layers/file/x: not a directory; check that the CernVM-FS repository repo is mounted and holds this layer",
		},
		{
			name:      "absolute link out of the root",
			urls:      []string{"cvmfs://repo/layers/out"},
			wantIndex: 0,
			wantIs:    ErrOutsideRoot,
			want: "layer 1 of the thin image (digest 5f70bf18a086, cvmfs://repo/layers/out) leads out of the CernVM-FS root: " +
				"ROOT/repo/layers/out leads to OUTSIDE, which is outside ROOT; a layer must stay inside the root",
		},
		{
			name:      "relative link out of the root",
			urls:      []string{"cvmfs://repo/layers/present", "cvmfs://repo/layers/out-relative"},
			wantIndex: 1,
			wantIs:    ErrOutsideRoot,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			layers := f.layers(t, tt.urls...)
			err := Check(layers)
			var layerErr *LayerError
			if !errors.As(err, &layerErr) {
				t.Fatalf("Check = %v, want a *LayerError", err)
			}
			l := layers[tt.wantIndex]
			want := LayerError{Index: l.Index, Digest: l.Digest, URL: l.URL, Repository: l.Repository, Dir: l.Dir, Err: layerErr.Err}
			if *layerErr != want {
				t.Errorf("LayerError = %+v\nwant         %+v", *layerErr, want)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v does not match %v", err, tt.wantIs)
			}
			if tt.want != "" {
				outside, err := filepath.EvalSymlinks(f.outside)
				if err != nil {
					t.Fatal(err)
				}
				want := strings.NewReplacer("ROOT", f.root, "OUTSIDE", outside).Replace(tt.want)
				if layerErr.Error() != want {
					t.Errorf("message:\n got %s\nwant %s", layerErr, want)
				}
			}
		})
	}
}

// TestCheckLayersBuiltByHand covers callers that keep URLs and directories
// themselves and build ResolvedLayer without Resolve.
func TestCheckLayersBuiltByHand(t *testing.T) {
	f := newCheckFixture(t)
	tests := []struct {
		name    string
		layer   ResolvedLayer
		wantErr string // empty when Check must pass
	}{
		{
			name:  "without repository",
			layer: ResolvedLayer{Index: 4, Digest: hexA, URL: "cvmfs://repo/layers/present", Dir: filepath.Join(f.root, "repo/layers/present")},
		},
		{
			name:    "repository taken from the url for the message",
			layer:   ResolvedLayer{Index: 4, Digest: hexA, URL: "cvmfs://repo/layers/absent", Dir: filepath.Join(f.root, "repo/layers/absent")},
			wantErr: "check that the CernVM-FS repository repo is mounted",
		},
		{
			name:    "directory that is not the url's",
			layer:   ResolvedLayer{Index: 4, Digest: hexA, URL: "cvmfs://repo/layers/other", Dir: filepath.Join(f.root, "repo/layers/present")},
			wantErr: "is not the one url cvmfs://repo/layers/other names",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check([]ResolvedLayer{tt.layer})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Check failed: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Check = %v, want an error containing %q", err, tt.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "layer 5 of the thin image") {
				t.Errorf("message %q does not name layer 5", err)
			}
		})
	}
}
