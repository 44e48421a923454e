package overlay2

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/moby/sys/mountinfo"
)

// Repositories mounts the CernVM-FS repositories that thin images need,
// below the driver's CernVM-FS root, for the "internal" mount method;
// *cvmfs.Repositories implements it. A driver without one leaves mounting
// to the host (the "external" method) and only reads below the root.
type Repositories interface {
	// AcquireAll takes a reference to each of repos, mounting those that
	// had none, and those only. On failure it holds none of them.
	AcquireAll(repos []string) error
	// ReleaseAll gives back one reference to each of repos and unmounts
	// those left without one.
	ReleaseAll(repos []string) error
}

// Option changes how New builds a driver.
type Option func(*Driver)

// WithRepositories makes the driver mount repositories itself through
// repos. The first Get of a layer above a thin layer acquires every
// repository the thin image's layers lie in, before their directories are
// checked and the layer is mounted; the Put that unmounts the layer
// releases them. Each mounted layer holds one reference to each of its
// repositories. New takes those references again for the layers that a
// previous instance of the plugin left mounted, so repos must be new and
// hold no reference of its own.
func WithRepositories(repos Repositories) Option {
	return func(d *Driver) { d.repos = repos }
}

// mountMethod names how repositories come to be mounted, for Status.
func (d *Driver) mountMethod() string {
	if d.repos == nil {
		return "external"
	}
	return "internal"
}

// acquireRepositories takes the repositories whose layers chain, the lower
// directories of layer id, holds, and returns them for
// releaseRepositories. Without a Repositories, or for a chain without
// repository layers, it takes none. verb says what needs them, for the
// error ("mount", "read").
func (d *Driver) acquireRepositories(verb, id string, chain lowerChain) ([]string, error) {
	if d.repos == nil {
		return nil, nil
	}
	repos := chain.repositories()
	if len(repos) == 0 {
		return nil, nil
	}
	if err := d.repos.AcquireAll(repos); err != nil {
		return nil, fmt.Errorf("cannot %s layer %s, which is based on the thin image in layer %s: %w",
			verb, id, chain.thinID, err)
	}
	return repos, nil
}

// releaseRepositories gives back what acquireRepositories took for layer
// id.
func (d *Driver) releaseRepositories(id string, repos []string) error {
	if d.repos == nil || len(repos) == 0 {
		return nil
	}
	if err := d.repos.ReleaseAll(repos); err != nil {
		return fmt.Errorf("failed to release the repositories of layer %s: %w", id, err)
	}
	return nil
}

// adoptMounted rebuilds, after a restart of the plugin, the references
// that the layers still mounted hold to their repositories: it reconciles
// each mounted layer's count with the mount table at once, rather than at
// its next Get or Put, and takes one reference to each of its
// repositories. The repositories are mounted already, and stay as they
// are. Without that, the first layer mounted after the restart would count
// a repository as unused by the others and unmount it at its last Put.
func (d *Driver) adoptMounted() error {
	if d.repos == nil {
		return nil
	}
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(d.home))
	if err != nil {
		return fmt.Errorf("failed to read the mount table: %w", err)
	}
	for _, m := range mounts {
		id, sub, ok := strings.Cut(strings.TrimPrefix(m.Mountpoint, d.home+string(filepath.Separator)), "/")
		if !ok || sub != mergedDirName || validateID(id) != nil {
			continue
		}
		if err := d.adoptLayer(id); err != nil {
			return err
		}
	}
	return nil
}

// adoptLayer takes the repositories of mounted layer id, once.
func (d *Driver) adoptLayer(id string) error {
	s := d.state(id)
	s.mu.Lock()
	defer s.mu.Unlock()

	if err := d.loadRefs(s, filepath.Join(d.home, id)); err != nil {
		return err
	}
	if s.refs == 0 || s.repos != nil {
		return nil
	}
	chain, err := d.mountChain(id)
	if err != nil {
		return fmt.Errorf("failed to find the repositories of mounted layer %s: %w", id, err)
	}
	repos, err := d.acquireRepositories("mount", id, chain)
	if err != nil {
		return err
	}
	s.repos = repos
	return nil
}
