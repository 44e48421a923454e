// Package layercheck compares a layer directory of a repository with the
// layer tar it was unpacked from: every entry of the tar must be in the
// directory with its type, permission bits, owner, size, link target or
// device numbers, whiteouts and opaque directories in the directory's
// whiteout format, and nothing else may be there. In the overlay format a
// ".wh." file left in the directory is reported as a leftover whiteout: an
// overlay mount would show it, and would not delete what it names.
//
// Modification times are not compared: directories get theirs when the
// unpacking ends, and CernVM-FS keeps its own.
package layercheck
