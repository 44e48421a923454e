package dockertest

import (
	"slices"
	"sort"
	"testing"
)

func TestMerge(t *testing.T) {
	tests := []struct {
		name   string
		layers []Layer
		want   []string // paths with kinds: "d /x", "f /x", "l /x"
	}{
		{
			name:   "parents are implied",
			layers: []Layer{{File("a/b/c", "c")}},
			want:   []string{"d /", "d /a", "d /a/b", "f /a/b/c"},
		},
		{
			name:   "later file replaces earlier one",
			layers: []Layer{{File("f", "old")}, {Symlink("f", "t")}},
			want:   []string{"d /", "l /f"},
		},
		{
			name:   "whiteout removes a file",
			layers: []Layer{{File("d/x", "x"), File("d/y", "y")}, {Whiteout("d/x")}},
			want:   []string{"d /", "d /d", "f /d/y"},
		},
		{
			name:   "whiteout removes a directory with its contents",
			layers: []Layer{{File("d/sub/x", "x")}, {Whiteout("d/sub")}},
			want:   []string{"d /", "d /d"},
		},
		{
			name:   "opaque directory hides what is below but keeps its own",
			layers: []Layer{{File("o/old", "x"), File("o/deep/old", "x")}, {Opaque("o"), File("o/new", "n")}},
			want:   []string{"d /", "d /o", "f /o/new"},
		},
		{
			name:   "file replaces a directory",
			layers: []Layer{{File("p/x", "x")}, {File("p", "now a file")}},
			want:   []string{"d /", "f /p"},
		},
		{
			name:   "directories merge across layers",
			layers: []Layer{{File("d/a", "a")}, {File("d/b", "b")}},
			want:   []string{"d /", "d /d", "f /d/a", "f /d/b"},
		},
	}
	kinds := map[Kind]string{KindDir: "d", KindFile: "f", KindSymlink: "l"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for p, e := range Merge(tt.layers...) {
				got = append(got, kinds[e.Kind]+" "+p)
			}
			sort.Strings(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Merge() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDiffLines(t *testing.T) {
	tests := []struct {
		name      string
		want, got []string
		diff      string
	}{
		{name: "equal in any order", want: []string{"a", "b"}, got: []string{"b", "a"}, diff: ""},
		{name: "missing", want: []string{"a", "b"}, got: []string{"a"}, diff: "- b\n"},
		{name: "extra", want: []string{"b"}, got: []string{"a", "b"}, diff: "+ a\n"},
		{name: "changed", want: []string{"x 1"}, got: []string{"x 2"}, diff: "- x 1\n+ x 2\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := DiffLines(tt.want, tt.got); diff != tt.diff {
				t.Errorf("DiffLines() = %q, want %q", diff, tt.diff)
			}
		})
	}
}

func TestUnescapeMountPath(t *testing.T) {
	tests := []struct{ in, want string }{
		{`/plain/path`, `/plain/path`},
		{`/with\040space`, `/with space`},
		{`/back\134slash`, `/back\slash`},
		{`/cut\04`, `/cut\04`},
	}
	for _, tt := range tests {
		if got := unescapeMountPath(tt.in); got != tt.want {
			t.Errorf("unescapeMountPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
