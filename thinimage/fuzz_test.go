package thinimage

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, and that whatever it accepts
// resolves to directories inside <root>/<repository>, survives a Marshal
// and Parse round trip, and sorts into lower directories without repeats.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		descriptorJSON("1.0", "["+layerJSON(hexA, urlA)+", "+layerJSON(hexB, urlB)+"]"),
		descriptorJSON("0.1", "[]"),
		`{"version": "1.7", "min_version": "1.0", "origin": "x", "comment": "y", "layers": [], "extra": [1, {"a": null}]}`,
		descriptorJSON("1.0", "["+layerJSON("sha256:"+hexA, "cvmfs://r/a/../b/")+", "+layerJSON(hexA, "cvmfs://r/b")+"]"),
		descriptorJSON("1.0", "["+layerJSON(hexA, "cvmfs://r/a")+", "+layerJSON(hexA, "cvmfs://r/a/b")+"]"),
		descriptorJSON("1.0", "["+layerJSON(hexA, "cvmfs://repo/../../etc")+"]"),
		descriptorJSON("1.0", "["+layerJSON(hexA, "cvmfs://repo//etc")+"]"),
		descriptorJSON("1.0", "["+layerJSON(hexA, "cvmfs://repo/%2e%2e/etc")+"]"),
		descriptorJSON("1.0", "["+layerJSON(hexA, "cvmfs:repo/x")+"]"),
		descriptorJSON("1.0", "["+layerJSON(hexA, `cvmfs://repo/a\\..\\..`)+"]"),
		descriptorJSON("1.0", "["+layerJSON(hexA, "cvmfs://user@repo:1/x?y#z")+"]"),
		descriptorJSON("1.0", "null"),
		`{"version": "2.0", "min_version": "9.9", "layers": [null, 1, "x"]}`,
		"{", "", "null", "[]",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse(data)
		if err != nil {
			if d != nil {
				t.Fatal("Parse returned a descriptor with its error")
			}
			return
		}

		const root = "/cvmfs"
		layers, err := d.Resolve(root)
		if err != nil {
			t.Fatalf("Parse accepted a descriptor that does not resolve: %v", err)
		}
		if len(layers) != len(d.Layers) {
			t.Fatalf("Resolve returned %d layers for %d", len(layers), len(d.Layers))
		}
		for i, l := range layers {
			if l.Repository == "" || l.Repository == "." || l.Repository == ".." || strings.ContainsAny(l.Repository, "/\\") {
				t.Fatalf("layer %d: repository %q is not one name", i, l.Repository)
			}
			repoDir := filepath.Join(root, l.Repository)
			if !strings.HasPrefix(l.Dir, repoDir+"/") || filepath.Clean(l.Dir) != l.Dir {
				t.Fatalf("layer %d: %s (%s) is not a clean path inside %s", i, l.Dir, l.URL, repoDir)
			}
			if strings.ContainsAny(l.Dir, ":,") {
				t.Fatalf("layer %d: %s holds an overlay option separator", i, l.Dir)
			}
		}

		seen := make(map[string]bool)
		for _, l := range TopFirst(layers) {
			if seen[l.Dir] {
				t.Fatalf("TopFirst repeats %s", l.Dir)
			}
			seen[l.Dir] = true
		}

		out, err := d.Marshal()
		if err != nil {
			t.Fatalf("Marshal refused what Parse accepted: %v", err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse refused what Marshal wrote: %v\n%s", err, out)
		}
		out2, err := again.Marshal()
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("Marshal is not stable across a round trip:\n%s\n%s", out, out2)
		}
	})
}

// FuzzParseURL checks that every URL ParseURL accepts names a clean
// directory strictly inside its repository, and that its canonical form
// parses back to the same location.
func FuzzParseURL(f *testing.F) {
	for _, seed := range []string{
		urlA, "cvmfs://r/a/../b", "cvmfs://r//etc", "cvmfs://r/..", "cvmfs://../x",
		"cvmfs:r/x", "http://r/x", "cvmfs://r/%2e%2e", "cvmfs://u@r:1/x?q#f", "cvmfs://r/./",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		loc, err := ParseURL(raw)
		if err != nil {
			return
		}
		dir := loc.Dir("/cvmfs")
		repoDir := filepath.Join("/cvmfs", loc.Repository)
		if filepath.Dir(repoDir) != "/cvmfs" || !strings.HasPrefix(dir, repoDir+"/") {
			t.Fatalf("%q resolves to %s, outside %s", raw, dir, repoDir)
		}
		again, err := ParseURL(loc.String())
		if err != nil || again != loc {
			t.Fatalf("canonical form %q of %q parses to %+v, %v", loc.String(), raw, again, err)
		}
	})
}
