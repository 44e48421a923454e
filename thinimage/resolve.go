package thinimage

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ResolvedLayer is one descriptor layer resolved under a CernVM-FS root.
type ResolvedLayer struct {
	Index      int    // position in the descriptor, base first (0 = base)
	Digest     string // as written in the descriptor
	URL        string // as written in the descriptor
	Repository string
	Dir        string // absolute path of the layer directory
}

// Resolve returns the directory of every layer under root, base first, in
// the descriptor's order. An empty root means DefaultRoot; a relative one is
// refused. Resolve is purely lexical: it touches no file system, so a layer
// it returns may still be missing (see Check). It validates the layers again,
// so a Descriptor built by hand is held to the same rules as a parsed one,
// and fails with a *DescriptorError for a layer that breaks them.
func (d *Descriptor) Resolve(root string) ([]ResolvedLayer, error) {
	if root == "" {
		root = DefaultRoot
	}
	if !filepath.IsAbs(root) {
		return nil, fmt.Errorf("cvmfs root %q is not an absolute path", root)
	}
	root = filepath.Clean(root)

	locs, err := locateLayers(d.Layers)
	if err != nil {
		return nil, err
	}

	out := make([]ResolvedLayer, len(locs))
	for i, loc := range locs {
		out[i] = ResolvedLayer{
			Index:      i,
			Digest:     d.Layers[i].Digest,
			URL:        d.Layers[i].URL,
			Repository: loc.Repository,
			Dir:        loc.Dir(root),
		}
	}
	return out, nil
}

// TopFirst returns the layers in the order overlay takes lower directories:
// the last listed, the uppermost, first. A directory listed more than once
// is kept only where it is uppermost, because the kernel refuses a lower
// directory that appears twice; the package documentation explains why the
// merged tree is the same. The argument is not modified.
func TopFirst(layers []ResolvedLayer) []ResolvedLayer {
	out := make([]ResolvedLayer, 0, len(layers))
	seen := make(map[string]bool, len(layers))
	for _, l := range slices.Backward(layers) {
		if seen[l.Dir] {
			continue
		}
		seen[l.Dir] = true
		out = append(out, l)
	}
	return out
}

// Check makes sure that every layer directory can be mounted (rule 4 of the
// format): it exists, it is a directory, and, once symbolic links are
// followed, it still lies inside the CernVM-FS root it was resolved under.
// It checks the layers in the order given and returns a *LayerError for the
// first that fails, nil when all pass. Check only reads; it leaves nothing
// behind. Its answer holds when it is given: a repository that changes or
// goes away before the mount still fails the mount.
//
// The root is found again from each layer's Dir and URL, so layers built by
// hand must have Dir set to Location.Dir of their URL, as Resolve does.
func Check(layers []ResolvedLayer) error {
	for _, l := range layers {
		if err := checkLayer(l); err != nil {
			repo := l.Repository
			if repo == "" {
				if loc, err := ParseURL(l.URL); err == nil {
					repo = loc.Repository
				}
			}
			return &LayerError{
				Index:      l.Index,
				Digest:     l.Digest,
				URL:        l.URL,
				Repository: repo,
				Dir:        l.Dir,
				Err:        err,
			}
		}
	}
	return nil
}

// checkLayer checks one layer directory for Check. The directory is stat'ed
// before its links are followed: walking into it is what makes an automount
// of the repository happen, which a link-by-link walk might not trigger.
func checkLayer(l ResolvedLayer) error {
	fi, err := os.Stat(l.Dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return &notDirError{path: l.Dir, mode: fi.Mode()}
	}

	root, err := rootOf(l)
	if err != nil {
		return err
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return err
	}
	target, err := filepath.EvalSymlinks(l.Dir)
	if err != nil {
		return err
	}
	if !isWithin(realRoot, target) {
		return &outsideRootError{path: l.Dir, target: target, root: root}
	}
	return nil
}

// isWithin reports whether path is dir or lies below it; both are clean and
// absolute.
func isWithin(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// rootOf returns the CernVM-FS root a layer was resolved under: its Dir
// without the <repository>/<path> its URL names.
func rootOf(l ResolvedLayer) (string, error) {
	loc, err := ParseURL(l.URL)
	if err != nil {
		return "", err
	}
	rel := filepath.Join(loc.Repository, filepath.FromSlash(loc.Path))
	root, ok := strings.CutSuffix(l.Dir, string(filepath.Separator)+rel)
	if !ok {
		return "", fmt.Errorf("directory %s is not the one url %s names", l.Dir, l.URL)
	}
	if root == "" {
		root = string(filepath.Separator)
	}
	return root, nil
}

// Repositories returns the distinct repositories the layers use, sorted.
func Repositories(layers []ResolvedLayer) []string {
	repos := make([]string, 0, len(layers))
	for _, l := range layers {
		repos = append(repos, l.Repository)
	}
	slices.Sort(repos)
	return slices.Compact(repos)
}
