package aufs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/thinimage"
)

// branch is one directory of a layer's aufs mount.
type branch struct {
	dir string // absolute path
	// rel is the path relative to home, for mounts made from there; empty
	// for a repository layer, which lies outside home.
	rel string
	// repo is set for a thin image's repository layer.
	repo *thinimage.ResolvedLayer
	// whiteouts is set for the local branch that honours the overlay
	// whiteouts of the repository layer right below it.
	whiteouts bool
}

// stack is the read-only branches of a layer, top first, with a thin layer
// replaced by its repository layers.
type stack struct {
	ro     []branch
	thinID string // the thin layer in the chain, if any
	origin string // its descriptor's origin
}

// repositories returns the CernVM-FS repositories the stack's repository
// layers lie in, each once, in the order the stack first names them.
func (st stack) repositories() []string {
	var repos []string
	for _, b := range st.ro {
		if b.repo != nil && !slices.Contains(repos, b.repo.Repository) {
			repos = append(repos, b.repo.Repository)
		}
	}
	return repos
}

// readParents returns the parent chain of layer id, the parent first; a
// base layer has none.
func (d *Driver) readParents(id string) ([]string, error) {
	data, err := os.ReadFile(d.layerFile(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("layer %s does not exist", id)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read the parents of layer %s: %w", id, err)
	}
	var parents []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		p := strings.TrimSpace(sc.Text())
		if p == "" {
			continue
		}
		if err := validateID(p); err != nil {
			return nil, fmt.Errorf("corrupt parent list %s: %w", d.layerFile(id), err)
		}
		parents = append(parents, p)
	}
	return parents, sc.Err()
}

// mountStack returns the read-only branches layer id is mounted with. A
// thin layer has none: it is served from its own directory, which shows
// the descriptor.
func (d *Driver) mountStack(id string) (stack, error) {
	if d.isThin(id) {
		return stack{}, nil
	}
	parents, err := d.readParents(id)
	if err != nil {
		return stack{}, err
	}
	return d.stackOf(parents)
}

// stackOf turns a parent chain into branches. Following thin-image rule 2,
// a thin layer in the chain is replaced by its repository layers, the last
// listed uppermost, each under the local branch that honours its overlay
// whiteouts if it needs one, and the chain ends there: the thin layer's own
// directory, holding only the descriptor, is not a branch, and nothing
// below it is either.
func (d *Driver) stackOf(parents []string) (stack, error) {
	var st stack
	for _, p := range parents {
		if !d.isThin(p) {
			st.ro = append(st.ro, branch{dir: d.diffDir(p), rel: filepath.Join(diffDirName, p)})
			continue
		}
		rec, err := d.readThin(p)
		if err != nil {
			return st, err
		}
		wrec, err := d.readWhiteouts(p)
		if err != nil {
			return st, err
		}
		st.thinID, st.origin = p, rec.Origin
		// aufs refuses a branch given twice, as overlay does; TopFirst
		// keeps a layer listed twice where it is uppermost, which shows
		// the same tree.
		for _, l := range thinimage.TopFirst(rec.resolved()) {
			if wrec.has(l.Index) {
				st.ro = append(st.ro, branch{
					dir:       d.whiteoutDir(p, l.Index),
					rel:       filepath.Join(thinDirName, p, whiteoutsDirName, strconv.Itoa(l.Index)),
					whiteouts: true,
				})
			}
			st.ro = append(st.ro, branch{dir: l.Dir, repo: &l})
		}
		break
	}
	return st, nil
}

// prepareThin readies the thin part of a layer's branches for a mount: it
// checks that every repository layer is there (thin-image rule 4) and
// builds the branches that honour overlay whiteouts if that was not
// possible before. It returns the branches to mount.
func (d *Driver) prepareThin(id string, st stack) (stack, error) {
	if st.thinID == "" {
		return st, nil
	}
	var layers []thinimage.ResolvedLayer
	for _, b := range st.ro {
		if b.repo != nil {
			layers = append(layers, *b.repo)
		}
	}
	if err := thinimage.Check(layers); err != nil {
		return st, fmt.Errorf("cannot mount layer %s, which is based on the thin image in layer %s: %w", id, st.thinID, err)
	}

	wrec, err := d.readWhiteouts(st.thinID)
	if err != nil || wrec != nil {
		return st, err
	}
	if err := d.lockedEnsureWhiteouts(st.thinID); err != nil {
		return st, fmt.Errorf("cannot mount layer %s: %w", id, err)
	}
	return d.mountStack(id)
}

// checkBranchCount refuses a layer whose mount would need more branches
// than the kernel's aufs takes. verb says what was refused ("create",
// "mount").
func (d *Driver) checkBranchCount(verb, id string, st stack) error {
	n := 1 + len(st.ro)
	limit := d.kernel.maxBranches
	if n <= limit {
		return nil
	}
	counting := ""
	if st.thinID != "" {
		origin := ""
		if st.origin != "" {
			origin = " (" + st.origin + ")"
		}
		counting = fmt.Sprintf(", counting the repository layers of the thin image in layer %s%s and the local branches that honour their overlay whiteouts",
			st.thinID, origin)
	}
	return fmt.Errorf("cannot %s layer %s: it needs %d aufs branches%s, and the kernel's aufs takes at most %d, which leaves room for %d layers below a layer",
		verb, id, n, counting, limit, limit-1)
}

// checkOverlap refuses branches of which one lies inside another, or is
// given twice, which aufs refuses with a bare EINVAL.
func checkOverlap(id string, branches []branch) error {
	for i, a := range branches {
		for _, b := range branches[i+1:] {
			inner, outer := a, b
			if len(a.dir) < len(b.dir) {
				inner, outer = b, a
			}
			if inner.dir == outer.dir || strings.HasPrefix(inner.dir, outer.dir+"/") {
				return fmt.Errorf("cannot mount layer %s: branch %s lies inside branch %s, and aufs refuses overlapping branches",
					id, describeBranch(inner), describeBranch(outer))
			}
		}
	}
	return nil
}
