// Package repository keeps thin image layers in a directory laid out like a
// CernVM-FS repository, and remembers which descriptors use them.
//
// # Layout
//
//	<root>/<repo>/<subdirectory>/<hex>            one unpacked layer
//	<root>/<repo>/<subdirectory>/.partial-<...>   a layer being unpacked
//	<root>/<repo>/.thin/descriptors/<sha256>.json every descriptor written
//	<root>/<repo>/.thin/lock                      taken while layers change
//
// <root> stands for /cvmfs, <subdirectory> is "layers" unless told
// otherwise, and <hex> is the layer's diff ID, the sha256 of its
// uncompressed tar, without the "sha256:" prefix. The descriptor names the
// layer "sha256:<hex>" and points at it with cvmfs://<repo>/<subdirectory>/<hex>.
//
// # Layers are written once and atomically
//
// A layer is unpacked into a fresh ".partial-" directory next to its final
// place, checked against its diff ID, flushed to disk (syncfs) and renamed
// into place; the parent directory is then flushed too. A directory named by
// a diff ID is therefore always complete, and is never written again: a
// second image that shares a layer finds it and uses it as it is. A run that
// is interrupted leaves at most a ".partial-" directory, which no lookup
// takes for a layer and which gc removes. Two runs unpacking one layer at
// once both finish; the second rename finds the layer in place and its copy
// is dropped.
//
// # Descriptor records
//
// Every descriptor make-thin writes into the repository is also kept below
// .thin/descriptors, named by the sha256 of its bytes (the thin.json of the
// thin image). gc takes the layers those records point at as the ones in
// use; deleting a record is how an image is forgotten. Records are written
// to a temporary file and renamed into place.
//
// # Locking
//
// Writers of layers hold a shared lock on .thin/lock, and gc --delete an
// exclusive one, so that gc never removes a layer a running make-thin has
// just unpacked but not yet recorded.
package repository
