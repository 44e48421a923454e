package overlay2

import (
	"testing"

	"github.com/moby/sys/mountinfo"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/graphdriver"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/graphdriver/graphtest"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/cvmfs"
)

// TestConformance runs the shared backend suite against overlay2.
func TestConformance(t *testing.T) {
	graphtest.Run(t, factory(false), options)
}

// TestConformanceNaiveDiff runs the suite with diffs computed by comparing
// trees, as on a kernel whose overlay redirects renamed directories and
// cannot be told not to.
func TestConformanceNaiveDiff(t *testing.T) {
	graphtest.Run(t, factory(true), options)
}

func factory(naive bool) graphtest.Factory {
	return func(t testing.TB, home, cvmfsRoot string) graphdriver.Driver {
		d, err := New(graphdriver.InitOptions{Home: home}, cvmfsRoot)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		if naive {
			d.features.naiveDiff = true
		}
		return d
	}
}

var options = graphtest.Options{
	MaxLowerLayers: maxDepth,
	InspectMount: func(t testing.TB, id string, m *mountinfo.Info) {
		if m.FSType != "overlay" {
			t.Errorf("layer %s is mounted as %s, want overlay", id, m.FSType)
		}
	},
}

// TestRepositories runs the cases of the internal mount method against
// overlay2, with real overlay mounts over the repositories the stand-in
// client mounts.
func TestRepositories(t *testing.T) {
	graphtest.RunRepositories(t, func(t testing.TB, home, cvmfsRoot string, repos *cvmfs.Repositories) graphdriver.Driver {
		d, err := New(graphdriver.InitOptions{Home: home}, cvmfsRoot, WithRepositories(repos))
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		return d
	}, options)
}
