// Package unpack turns a layer tar into a layer directory that overlay can
// stack directly, the form a thin image's layers take in a CernVM-FS
// repository.
//
// # Whiteouts
//
// A layer tar records deletions as AUFS markers: an empty file
// ".wh.<name>" deletes <name> from the layers below, and an empty file
// ".wh..wh..opq" makes its directory hide everything the layers below hold
// there. Unpack writes them in one of the two formats the graphdriver
// reads (rule 7 of the thin image format):
//
//   - Overlay: a deletion becomes a character device 0/0 named <name> and
//     an opaque directory carries the extended attribute
//     trusted.overlay.opaque=y. Overlay mounts such a layer as it is. This
//     needs root (mknod and trusted.* attributes), and a file system that
//     keeps both: a local directory, or a CernVM-FS transaction with
//     extended attributes.
//   - AUFS: the markers stay plain files, as `cvmfs_server ingest` leaves
//     them. The graphdriver hides them and honours them when it stacks the
//     layer.
//
// # What a layer may not do
//
// A layer comes from anyone, so the tar is checked entry by entry before a
// byte of it is written, and the first entry that breaks a rule stops the
// unpacking with an *UnsafeEntryError (matching ErrUnsafeEntry):
//
//   - A name that leads out of the layer ("../etc/passwd") is refused.
//     Leading slashes are dropped, as Docker does: "/etc/passwd" is
//     "etc/passwd" of the layer.
//   - An entry below a symbolic link of the same layer is refused. A link
//     is kept exactly as it is, absolute or relative, wherever it points:
//     inside a container it resolves inside the container's root, so an
//     absolute link is no escape. But it must never be followed while the
//     layer is written, or "lib -> /usr/lib" followed by "lib/x" would write
//     the host's /usr/lib/x.
//   - A hard link must name a file that the same layer holds, written
//     before it, and reached without crossing a symbolic link.
//   - Entry types other than files, directories, links, devices and FIFOs
//     are refused.
//
// The writing itself goes through os.Root (moby/go-archive's Unpack), which
// keeps every file operation below the layer directory even if a check
// above were wrong: the checks give the clear error, os.Root the guarantee.
//
// Ownership, permission bits (set explicitly, whatever the umask), extended
// attributes, symbolic links, hard links, device nodes and FIFOs are kept.
// Unpack does not change the process's umask.
package unpack
