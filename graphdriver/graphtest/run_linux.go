package graphtest

import "testing"

// testCase is one named case of the suite. A plain case sets run and gets
// an env of its own; a table of cases sets table and makes one env per
// subtest with fresh.
type testCase struct {
	name  string
	run   func(e *env)
	table func(t *testing.T, fresh func(t *testing.T) *env)
}

// Run runs every case of the suite against the drivers newDriver builds, as
// subtests grouped by concern (layers, apply-diff, diff, changes, chains,
// refcount, restart, thin). Each case gets a new driver on its own home and
// CernVM-FS root, both temporary directories, and leaves nothing mounted.
// Cases skip when the test does not run as root.
func Run(t *testing.T, newDriver Factory, opts Options) {
	groups := []struct {
		name  string
		cases []testCase
	}{
		{"layers", layerCases()},
		{"apply-diff", applyDiffCases()},
		{"diff", diffCases()},
		{"changes", changesCases()},
		{"chains", chainCases()},
		{"refcount", refcountCases()},
		{"restart", restartCases()},
		{"thin", thinCases()},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, c := range g.cases {
				t.Run(c.name, func(t *testing.T) {
					fresh := func(t *testing.T) *env { return newEnv(t, newDriver, opts) }
					if c.table != nil {
						c.table(t, fresh)
						return
					}
					c.run(fresh(t))
				})
			}
		})
	}
}
