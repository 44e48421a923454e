package dockertest

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// IngestLayer publishes a layer tar, as `docker save` writes it, into the
// CernVM-FS root the way `cvmfs_server ingest -t - -b layers/<digest> REPO`
// does: unpacked below <cvmfsRoot>/<repo>/layers/<digest>, where the digest
// is the sha256 of the tar (the layer's diff ID). It returns the layer's
// descriptor entry.
func IngestLayer(cvmfsRoot, repo string, layerTar []byte) (ThinLayer, error) {
	sum := sha256.Sum256(layerTar)
	digest := hex.EncodeToString(sum[:])

	rel := "layers/" + digest
	if err := UnpackAsIngest(bytes.NewReader(layerTar), filepath.Join(cvmfsRoot, repo, filepath.FromSlash(rel))); err != nil {
		return ThinLayer{}, err
	}
	return ThinLayer{Digest: digest, URL: "cvmfs://" + repo + "/" + rel}, nil
}

// UnpackAsIngest unpacks a layer tar into dir, which must not exist yet, as
// `cvmfs_server ingest` leaves it in a repository: every entry is written as
// it is, so the AUFS markers ".wh.<name>" and ".wh..wh..opq" stay ordinary
// empty files and delete nothing; ownership, permission bits (setuid
// included), modification times, symlinks and hard links are kept; extended
// attributes are dropped. An entry whose name or hard link target would
// leave dir is refused, and so is a device or fifo, which layers built from
// a Dockerfile do not hold. On failure dir is left as far as it got.
func UnpackAsIngest(r io.Reader, dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("failed to create parent of layer %s: %w", dir, err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("failed to create layer %s: %w", dir, err)
	}
	// Every access goes through the root, so that a symlink unpacked
	// earlier cannot lead a later entry out of the layer either.
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("failed to open layer %s: %w", dir, err)
	}
	defer root.Close()

	// Writing into a directory changes its time, so directory times are set
	// once everything is in place.
	type dirTime struct {
		name  string
		mtime time.Time
	}
	var dirTimes []dirTime

	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("failed to read layer tar for %s: %w", dir, err)
		}
		name, err := layerPath(hdr.Name)
		if err != nil {
			return fmt.Errorf("layer tar for %s: %w", dir, err)
		}
		if err := unpackEntry(root, name, hdr, tr); err != nil {
			return fmt.Errorf("failed to unpack %s into layer %s: %w", hdr.Name, dir, err)
		}
		if hdr.Typeflag == tar.TypeDir {
			dirTimes = append(dirTimes, dirTime{name, hdr.ModTime})
		}
	}

	for _, dt := range slices.Backward(dirTimes) {
		if err := root.Chtimes(dt.name, dt.mtime, dt.mtime); err != nil {
			return fmt.Errorf("failed to set the time of %s in layer %s: %w", dt.name, dir, err)
		}
	}
	return nil
}

// layerPath turns a tar entry name into a clean relative path, "." for the
// layer root, and refuses names that leave the layer.
func layerPath(name string) (string, error) {
	p := path.Clean(strings.TrimPrefix(name, "./"))
	if path.IsAbs(p) || p == ".." || strings.HasPrefix(p, "../") {
		return "", fmt.Errorf("entry %q leaves the layer", name)
	}
	return p, nil
}

// unpackEntry creates one tar entry below root. Ownership is set before the
// mode, because chown clears the setuid and setgid bits.
func unpackEntry(root *os.Root, name string, hdr *tar.Header, content io.Reader) error {
	if name == "." {
		return setOwnerAndMode(root, name, hdr)
	}
	if err := root.MkdirAll(path.Dir(name), 0o755); err != nil {
		return err
	}

	switch hdr.Typeflag {
	case tar.TypeDir:
		// A directory already made as the parent of an earlier entry takes
		// its own entry's owner and mode now.
		err := root.Mkdir(name, 0o700)
		if errors.Is(err, fs.ErrExist) {
			fi, lerr := root.Lstat(name)
			if lerr != nil {
				return lerr
			}
			if !fi.IsDir() {
				return fmt.Errorf("directory entry %s replaces an entry of the same tar", name)
			}
		} else if err != nil {
			return err
		}
		return setOwnerAndMode(root, name, hdr)
	case tar.TypeReg:
		f, err := root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, content); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		if err := setOwnerAndMode(root, name, hdr); err != nil {
			return err
		}
		return root.Chtimes(name, hdr.ModTime, hdr.ModTime)
	case tar.TypeSymlink:
		if err := root.Symlink(hdr.Linkname, name); err != nil {
			return err
		}
		return root.Lchown(name, hdr.Uid, hdr.Gid)
	case tar.TypeLink:
		target, err := layerPath(hdr.Linkname)
		if err != nil {
			return fmt.Errorf("hard link target: %w", err)
		}
		return root.Link(target, name)
	default:
		return fmt.Errorf("entry of tar type %q is not supported", hdr.Typeflag)
	}
}

// setOwnerAndMode gives an unpacked file or directory the owner and mode of
// its tar entry.
func setOwnerAndMode(root *os.Root, name string, hdr *tar.Header) error {
	if err := root.Lchown(name, hdr.Uid, hdr.Gid); err != nil {
		return err
	}
	return root.Chmod(name, hdr.FileInfo().Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
}

// fullListScript prints one line per path of a container's root file system,
// sorted by path, with everything a file's identity depends on apart from
// times:
//
//	d <path> <mode> <uid>:<gid>
//	f <path> <mode> <uid>:<gid> <size> <links> <md5>
//	l <path> <mode> <uid>:<gid> -> <target>
//	? <path> <mode> <uid>:<gid> <type> <major>,<minor>
//
// The mode is octal with the setuid, setgid and sticky bits. Only regular
// files show a link count: a directory's count depends on how overlay
// merges it, not on the image. The mount points /proc, /sys and /dev and
// the files dockerd bind-mounts into /etc are left out. Paths must not
// hold blanks.
const fullListScript = `find / -xdev | sort | while read -r p; do
  case "$p" in /proc|/sys|/dev|/etc/hosts|/etc/hostname|/etc/resolv.conf) continue;; esac
  m=$(stat -c '%a %u:%g' "$p")
  if [ -L "$p" ]; then echo "l $p $m -> $(readlink "$p")"
  elif [ -d "$p" ]; then echo "d $p $m"
  elif [ -f "$p" ]; then echo "f $p $m $(stat -c '%s %h' "$p") $(md5sum < "$p" | cut -d' ' -f1)"
  else echo "? $p $m $(stat -c '%F %t,%T' "$p")"
  fi
done`

// FullListing runs fullListScript in a new container of image and returns
// its lines.
func (d *Daemon) FullListing(t *testing.T, image string) []string {
	t.Helper()
	return strings.Split(strings.TrimSpace(d.Run(t, image, "sh", "-c", fullListScript)), "\n")
}
