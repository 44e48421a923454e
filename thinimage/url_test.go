package thinimage

import (
	"errors"
	"strings"
	"testing"
)

func TestParseURLAccepts(t *testing.T) {
	tests := []struct {
		name     string
		raw      string
		wantRepo string
		wantPath string
	}{
		{"layer", "cvmfs://unpacked.cern.ch/layers/5f70bf18a086", "unpacked.cern.ch", "layers/5f70bf18a086"},
		{"ducc layout", "cvmfs://unpacked.cern.ch/.layers/f1/f1e3/layerfs", "unpacked.cern.ch", ".layers/f1/f1e3/layerfs"},
		{"single segment", "cvmfs://repo/x", "repo", "x"},
		{"upper-case scheme", "CVMFS://repo/x", "repo", "x"},
		{"underscore and dash in repository", "cvmfs://my_repo-1.example.org/x", "my_repo-1.example.org", "x"},
		{"repository starting with a digit", "cvmfs://1repo/x", "1repo", "x"},
		{"trailing slash", "cvmfs://repo/layers/abc/", "repo", "layers/abc"},
		{"dot segment", "cvmfs://repo/./layers/./abc", "repo", "layers/abc"},
		{"empty inner segment", "cvmfs://repo/layers//abc", "repo", "layers/abc"},
		{"dot-dot staying inside", "cvmfs://repo/a/../b", "repo", "b"},
		{"dot-dot back to a sibling", "cvmfs://repo/a/b/../../c/d", "repo", "c/d"},
		{"three dots is a name", "cvmfs://repo/.../x", "repo", ".../x"},
		{"allowed punctuation", "cvmfs://repo/a+b~c@d=e_f-g.h", "repo", "a+b~c@d=e_f-g.h"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc, err := ParseURL(tt.raw)
			if err != nil {
				t.Fatalf("ParseURL(%q) failed: %v", tt.raw, err)
			}
			want := Location{Repository: tt.wantRepo, Path: tt.wantPath}
			if loc != want {
				t.Fatalf("ParseURL(%q) = %+v, want %+v", tt.raw, loc, want)
			}
			again, err := ParseURL(loc.String())
			if err != nil || again != loc {
				t.Fatalf("canonical form %q parses to %+v, %v; want %+v", loc.String(), again, err, loc)
			}
		})
	}
}

func TestParseURLRefuses(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want string // the whole reason
	}{
		{"empty", "", "has no scheme; expected cvmfs://<repository>/<path>"},
		{"plain path", "/cvmfs/repo/x", "has no scheme; expected cvmfs://<repository>/<path>"},
		{"relative path with a colon", "repo/a:b", "has no scheme; expected cvmfs://<repository>/<path>"},
		{"http", "http://repo/x", `scheme "http" is not supported, only cvmfs://`},
		{"https", "https://example.org/x", `scheme "https" is not supported, only cvmfs://`},
		{"file", "file:///etc", `scheme "file" is not supported, only cvmfs://`},
		{"scheme lookalike", "cvmfs2://repo/x", `scheme "cvmfs2" is not supported, only cvmfs://`},
		{"opaque", "cvmfs:repo/path", `has no "//" after "cvmfs:"; expected cvmfs://<repository>/<path>`},
		{"one slash", "cvmfs:/repo/path", `has no "//" after "cvmfs:"; expected cvmfs://<repository>/<path>`},
		{"no repository", "cvmfs:///etc", "has no repository name; expected cvmfs://<repository>/<path>"},
		{"nothing after scheme", "cvmfs://", "has no repository name; expected cvmfs://<repository>/<path>"},
		{"repository only", "cvmfs://repo", `names no directory inside repository "repo"; expected cvmfs://repo/<path>`},
		{"repository and slash", "cvmfs://repo/", `names no directory inside repository "repo"; expected cvmfs://repo/<path>`},
		{"absolute-looking path", "cvmfs://repo//etc", `path "/etc" is absolute; it must be relative to the repository`},
		{"escape", "cvmfs://repo/../../etc", `path "../../etc" leads out of the repository`},
		{"escape after a segment", "cvmfs://repo/a/../../b", `path "a/../../b" leads out of the repository`},
		{"parent only", "cvmfs://repo/..", `path ".." leads out of the repository`},
		{"repository itself", "cvmfs://repo/.", `path "." names the repository itself, not a layer directory inside it`},
		{"back to repository", "cvmfs://repo/a/..", `path "a/.." names the repository itself, not a layer directory inside it`},
		{"dot repository", "cvmfs://./etc", `repository name "." must start with a letter or digit`},
		{"dot-dot repository", "cvmfs://../etc", `repository name ".." must start with a letter or digit`},
		{"hidden repository", "cvmfs://.hidden/x", `repository name ".hidden" must start with a letter or digit`},
		{"option-like repository", "cvmfs://-oremount/x", `repository name "-oremount" must start with a letter or digit`},
		{"repository with plus", "cvmfs://re+po/x", `repository name "re+po" contains '+'; it may only use letters, digits, '.', '-' and '_'`},
		{"ipv6 literal", "cvmfs://[::1]/x", `repository name "[::1]" must start with a letter or digit`},
		{"empty port", "cvmfs://repo:/x", `repository name "repo:" contains ':'; it may only use letters, digits, '.', '-' and '_'`},
		{"user info", "cvmfs://user@repo/x", `user information ("user@") is not allowed`},
		{"user and password", "cvmfs://user:pw@repo/x", `user information ("user:pw@") is not allowed`},
		{"port", "cvmfs://repo:8000/x", `a port (":8000") is not allowed`},
		{"query", "cvmfs://repo/x?y=1", `query strings ("?") are not allowed`},
		{"fragment", "cvmfs://repo/x#y", `fragments ("#") are not allowed`},
		{"percent-encoded dots", "cvmfs://repo/%2e%2e/etc", "percent-encoding is not allowed; write the path as it is on disk"},
		{"percent-encoded slash", "cvmfs://repo/a%2fb", "percent-encoding is not allowed; write the path as it is on disk"},
		{"percent in repository", "cvmfs://re%70o/x", "percent-encoding is not allowed; write the path as it is on disk"},
		{"backslash", `cvmfs://repo/a\..\..\etc`, "backslashes are not allowed"},
		{"space", "cvmfs://repo/a b", "contains a space or control character at byte 14"},
		{"leading space", " cvmfs://repo/x", "contains a space or control character at byte 0"},
		{"newline", "cvmfs://repo/x\n", "contains a space or control character at byte 14"},
		{"nul", "cvmfs://repo/x\x00", "contains a space or control character at byte 14"},
		{"non-ASCII", "cvmfs://repo/\u2025/etc", "contains a non-ASCII character at byte 13"},
		{"colon in path", "cvmfs://repo/layers/sha256:abc", `path "layers/sha256:abc" contains ':'; paths may only use letters, digits, '/' and ". - _ + ~ @ ="`},
		{"comma in path", "cvmfs://repo/a,upperdir=/x", `path "a,upperdir=/x" contains ','; paths may only use letters, digits, '/' and ". - _ + ~ @ ="`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc, err := ParseURL(tt.raw)
			if err == nil {
				t.Fatalf("ParseURL(%q) = %+v, want an error", tt.raw, loc)
			}
			var urlErr *URLError
			if !errors.As(err, &urlErr) {
				t.Fatalf("ParseURL(%q) error %v is %T, want *URLError", tt.raw, err, err)
			}
			if urlErr.Reason != tt.want {
				t.Errorf("reason = %q\nwant     %q", urlErr.Reason, tt.want)
			}
			if urlErr.URL != tt.raw {
				t.Errorf("URL = %q, want %q", urlErr.URL, tt.raw)
			}
		})
	}
}

func TestURLErrorMessage(t *testing.T) {
	_, err := ParseURL("http://repo/x")
	want := `invalid cvmfs url "http://repo/x": scheme "http" is not supported, only cvmfs://`
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %s", err, want)
	}
}

func TestLocationDir(t *testing.T) {
	tests := []struct {
		name string
		loc  Location
		root string
		want string
	}{
		{"default root", Location{"unpacked.cern.ch", "layers/abc"}, DefaultRoot, "/cvmfs/unpacked.cern.ch/layers/abc"},
		{"root with trailing slash", Location{"repo", "x"}, "/srv/cvmfs/", "/srv/cvmfs/repo/x"},
		{"filesystem root", Location{"repo", "x/y"}, "/", "/repo/x/y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.loc.Dir(tt.root); got != tt.want {
				t.Errorf("Dir(%q) = %q, want %q", tt.root, got, tt.want)
			}
			if !strings.HasPrefix(tt.loc.String(), "cvmfs://"+tt.loc.Repository+"/") {
				t.Errorf("String() = %q", tt.loc.String())
			}
		})
	}
}
