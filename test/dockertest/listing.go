package dockertest

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"
)

// listScript prints one line per path of a container's root file system,
// sorted by path: "d <path> <mode>", "f <path> <mode> <md5>",
// "l <path> <target>", or "? <path>" for anything else (a device node, for
// instance a whiteout that leaked through). -xdev keeps it out of /proc,
// /sys and /dev. Paths must not hold blanks.
const listScript = `find / -xdev | sort | while read -r p; do
  if [ -L "$p" ]; then echo "l $p $(readlink "$p")"
  elif [ -d "$p" ]; then echo "d $p $(stat -c %a "$p")"
  elif [ -f "$p" ]; then echo "f $p $(stat -c %a "$p") $(md5sum < "$p" | cut -d' ' -f1)"
  else echo "? $p"
  fi
done`

// dockerMade are the paths dockerd puts into every container's root file
// system by itself. A listing leaves them out unless the image has them.
var dockerMade = map[string]bool{
	"/.dockerenv":      true,
	"/dev":             true,
	"/etc":             true,
	"/etc/hostname":    true,
	"/etc/hosts":       true,
	"/etc/mtab":        true,
	"/etc/resolv.conf": true,
	"/proc":            true,
	"/sys":             true,
}

// Listing runs listScript in a new container of image and returns its lines,
// leaving out what dockerd adds to every container and the image does not
// hold according to expected (the result of ExpectedListing).
func (d *Daemon) Listing(t *testing.T, image string, expected []string) []string {
	t.Helper()

	inImage := make(map[string]bool, len(expected))
	for _, line := range expected {
		inImage[listingPath(line)] = true
	}

	var lines []string
	for _, line := range strings.Split(strings.TrimSpace(d.Run(t, image, "sh", "-c", listScript)), "\n") {
		p := listingPath(line)
		if dockerMade[p] && !inImage[p] {
			continue
		}
		lines = append(lines, line)
	}
	return lines
}

// listingPath returns the path field of a listing line.
func listingPath(line string) string {
	fields := strings.Fields(line)
	if len(fields) < 2 {
		return ""
	}
	return fields[1]
}

// ExpectedListing returns the lines listScript prints for a root file system
// holding tree (the result of Merge), sorted the same way.
func ExpectedListing(tree map[string]Entry) ([]string, error) {
	paths := make([]string, 0, len(tree))
	for p := range tree {
		paths = append(paths, p)
	}
	// busybox sort compares bytes, as sort.Strings does.
	sort.Strings(paths)

	lines := make([]string, 0, len(paths))
	for _, p := range paths {
		e := tree[p]
		switch e.Kind {
		case KindDir:
			lines = append(lines, fmt.Sprintf("d %s %o", p, e.perm()))
		case KindSymlink:
			lines = append(lines, fmt.Sprintf("l %s %s", p, e.Target))
		case KindFile:
			sum, err := e.md5()
			if err != nil {
				return nil, fmt.Errorf("failed to checksum %s: %w", p, err)
			}
			lines = append(lines, fmt.Sprintf("f %s %o %s", p, e.perm(), sum))
		default:
			return nil, fmt.Errorf("merged tree holds %s of kind %d", p, e.Kind)
		}
	}
	return lines, nil
}

// md5 returns the hex md5 of a file entry's content, as md5sum prints it.
func (e Entry) md5() (string, error) {
	r, err := e.open()
	if err != nil {
		return "", err
	}
	defer r.Close()

	h := md5.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// DiffLines describes how got differs from want as sets of lines, "-" for
// a line only wanted and "+" for one only got, or returns "" when they hold
// the same lines.
func DiffLines(want, got []string) string {
	want = sortedCopy(want)
	got = sortedCopy(got)

	var b strings.Builder
	i, j := 0, 0
	for i < len(want) || j < len(got) {
		switch {
		case j >= len(got) || (i < len(want) && want[i] < got[j]):
			fmt.Fprintf(&b, "- %s\n", want[i])
			i++
		case i >= len(want) || got[j] < want[i]:
			fmt.Fprintf(&b, "+ %s\n", got[j])
			j++
		default:
			i++
			j++
		}
	}
	return b.String()
}

// sortedCopy returns a sorted copy of lines.
func sortedCopy(lines []string) []string {
	c := append([]string(nil), lines...)
	sort.Strings(c)
	return c
}
