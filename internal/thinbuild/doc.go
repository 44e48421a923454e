// Package thinbuild makes a thin image, and reads the descriptor of one
// back. A thin image is the descriptor that lists a source image's layers
// in a repository, the one-file layer that carries it, and an image
// configuration that is the source's, whole, with that layer as its only
// one.
//
// The same source and repository always give the same thin image, byte for
// byte: the descriptor is marshalled the same way every time, the layer
// tar's one entry has fixed metadata (mode 0644, owner 0:0, modification
// time the Unix epoch, no user or group names), and the configuration takes
// its time stamps from the source. Loading it twice, or from two machines,
// gives one image ID.
package thinbuild
