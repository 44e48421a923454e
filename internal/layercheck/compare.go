package layercheck

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/unpack"
)

// Problem is one difference between a layer tar and its directory.
type Problem struct {
	Path string
	// What is wrong: "missing", "unexpected", "leftover whiteout file",
	// "type", "permissions", "owner", "size", "target", "device",
	// "opaque".
	What string
	Want string
	Got  string
}

func (p Problem) String() string {
	switch p.What {
	case "missing":
		return fmt.Sprintf("/%s: missing (want %s)", p.Path, p.Want)
	case "unexpected", "leftover whiteout file":
		return fmt.Sprintf("/%s: %s (%s)", p.Path, p.What, p.Got)
	default:
		return fmt.Sprintf("/%s: %s differ: want %s, got %s", p.Path, p.What, p.Want, p.Got)
	}
}

// Compare returns the problems of a layer directory listed as got against
// the listing want of its tar, sorted by path.
func Compare(want Listing, implied map[string]bool, got Listing, format unpack.WhiteoutFormat) []Problem {
	var problems []Problem
	for p, w := range want {
		g, ok := got[p]
		if !ok {
			problems = append(problems, Problem{Path: p, What: "missing", Want: w.describe()})
			continue
		}
		problems = append(problems, compareEntry(p, w, g, format)...)
	}
	for p, g := range got {
		if _, ok := want[p]; ok {
			continue
		}
		if implied[p] && g.Type == Dir {
			continue
		}
		what := "unexpected"
		if format == unpack.Overlay && strings.HasPrefix(path.Base(p), unpack.WhiteoutPrefix) {
			what = "leftover whiteout file"
		}
		problems = append(problems, Problem{Path: p, What: what, Got: g.describe()})
	}
	sort.Slice(problems, func(i, j int) bool {
		if problems[i].Path != problems[j].Path {
			return problems[i].Path < problems[j].Path
		}
		return problems[i].What < problems[j].What
	})
	return problems
}

// compareEntry compares one path present on both sides.
func compareEntry(p string, w, g Entry, format unpack.WhiteoutFormat) []Problem {
	if w.Type != g.Type {
		return []Problem{{Path: p, What: "type", Want: string(w.Type), Got: string(g.Type)}}
	}
	var problems []Problem
	add := func(what, want, got string) {
		problems = append(problems, Problem{Path: p, What: what, Want: want, Got: got})
	}
	if w.Type == Whiteout {
		return nil
	}
	if w.Type != Symlink && !w.hardlink && w.Perm != g.Perm {
		add("permissions", fmt.Sprintf("%04o", uint32(w.Perm)), fmt.Sprintf("%04o", uint32(g.Perm)))
	}
	if !w.hardlink && (w.UID != g.UID || w.GID != g.GID) {
		add("owner", fmt.Sprintf("%d:%d", w.UID, w.GID), fmt.Sprintf("%d:%d", g.UID, g.GID))
	}
	switch w.Type {
	case File:
		if w.Size != g.Size {
			add("size", fmt.Sprint(w.Size), fmt.Sprint(g.Size))
		}
	case Symlink:
		if w.Target != g.Target {
			add("target", w.Target, g.Target)
		}
	case CharDev, BlockDev:
		if w.Major != g.Major || w.Minor != g.Minor {
			add("device", fmt.Sprintf("%d,%d", w.Major, w.Minor), fmt.Sprintf("%d,%d", g.Major, g.Minor))
		}
	case Dir:
		if format == unpack.Overlay && w.Opaque != g.Opaque {
			add("opaque", fmt.Sprint(w.Opaque), fmt.Sprint(g.Opaque))
		}
	}
	return problems
}
