//go:build !linux

package main

// hostKernel stands for a kernel without overlay or aufs: the backends
// mount Linux file systems only.
type hostKernel struct {
	filesystems string
}

// Supports implements kernelFS.
func (hostKernel) Supports(string) bool { return false }
