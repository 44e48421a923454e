//go:build !linux

package graphtest

import "testing"

// Run skips: the suite mounts file systems and reads the Linux mount table.
func Run(t *testing.T, newDriver Factory, opts Options) {
	t.Skip("the graphdriver conformance suite runs on Linux only")
}
