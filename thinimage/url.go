package thinimage

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"
)

// Scheme is the only URL scheme a layer may use.
const Scheme = "cvmfs"

// urlForm is the shape a layer URL must have, for messages.
const urlForm = "cvmfs://<repository>/<path>"

// Location is a parsed layer URL: a directory inside a CernVM-FS
// repository. ParseURL only returns locations whose Repository is a single
// host-like name and whose Path is clean, relative, never empty or "." and
// never leads out of the repository.
type Location struct {
	Repository string
	Path       string // slash-separated, relative to the repository
}

// ParseURL parses a layer URL of the form cvmfs://<repository>/<path>. It
// refuses, with a *URLError, every URL that could name a directory outside
// its repository or that two readers could understand differently; the
// package documentation lists the rules.
//
// The URL is parsed by hand rather than with net/url, which decodes
// percent-escapes and accepts forms (opaque URLs, user information, ports)
// that have no meaning here; refusing them is simpler than reasoning about
// what each would resolve to.
func ParseURL(raw string) (Location, error) {
	fail := func(format string, args ...any) (Location, error) {
		return Location{}, &URLError{URL: raw, Reason: fmt.Sprintf(format, args...)}
	}

	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c >= 0x80:
			return fail("contains a non-ASCII character at byte %d", i)
		case c <= ' ' || c == 0x7f:
			return fail("contains a space or control character at byte %d", i)
		}
	}

	scheme, rest, ok := strings.Cut(raw, ":")
	if !ok || !isScheme(scheme) {
		return fail("has no scheme; expected %s", urlForm)
	}
	if !strings.EqualFold(scheme, Scheme) {
		return fail("scheme %q is not supported, only %s://", scheme, Scheme)
	}
	rest, ok = strings.CutPrefix(rest, "//")
	if !ok {
		return fail("has no %q after %q; expected %s", "//", scheme+":", urlForm)
	}

	// Refuse what a URL parser would interpret before looking at the
	// parts, so that no part is read in a way some other parser would not.
	switch {
	case strings.Contains(rest, "?"):
		return fail("query strings (%q) are not allowed", "?")
	case strings.Contains(rest, "#"):
		return fail("fragments (%q) are not allowed", "#")
	case strings.Contains(rest, "%"):
		return fail("percent-encoding is not allowed; write the path as it is on disk")
	case strings.Contains(rest, `\`):
		return fail("backslashes are not allowed")
	}

	repo, p, hasPath := strings.Cut(rest, "/")
	if reason := checkRepository(repo); reason != "" {
		return fail("%s", reason)
	}
	if !hasPath || p == "" {
		return fail("names no directory inside repository %q; expected %s://%s/<path>",
			repo, Scheme, repo)
	}
	if strings.HasPrefix(p, "/") {
		return fail("path %q is absolute; it must be relative to the repository", p)
	}
	for i := 0; i < len(p); i++ {
		if !isPathByte(p[i]) {
			return fail("path %q contains %q; paths may only use letters, digits, '/' and %q",
				p, p[i], ". - _ + ~ @ =")
		}
	}

	clean := path.Clean(p)
	switch {
	case clean == "..", strings.HasPrefix(clean, "../"):
		return fail("path %q leads out of the repository", p)
	case clean == ".":
		return fail("path %q names the repository itself, not a layer directory inside it", p)
	}
	return Location{Repository: repo, Path: clean}, nil
}

// Dir returns the layer directory under root: <root>/<repository>/<path>.
// Root is used as given; Resolve substitutes DefaultRoot for an empty one.
func (l Location) Dir(root string) string {
	return filepath.Join(root, l.Repository, filepath.FromSlash(l.Path))
}

// String returns the canonical form of the URL, which ParseURL turns back
// into the same Location.
func (l Location) String() string {
	return Scheme + "://" + l.Repository + "/" + l.Path
}

// checkRepository returns why name is not a usable repository name, or ""
// when it is one.
func checkRepository(name string) string {
	if at := strings.LastIndexByte(name, '@'); at >= 0 {
		return fmt.Sprintf("user information (%q) is not allowed", name[:at+1])
	}
	if i := strings.LastIndexByte(name, ':'); i >= 0 && isDigits(name[i+1:]) {
		return fmt.Sprintf("a port (%q) is not allowed", name[i:])
	}
	if name == "" {
		return "has no repository name; expected " + urlForm
	}
	// Starting with a letter or digit rules out ".", "..", hidden names
	// and anything a mount helper could take for an option.
	if !isAlnum(name[0]) {
		return fmt.Sprintf("repository name %q must start with a letter or digit", name)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !isAlnum(c) && c != '.' && c != '-' && c != '_' {
			return fmt.Sprintf("repository name %q contains %q; "+
				"it may only use letters, digits, '.', '-' and '_'", name, c)
		}
	}
	return ""
}

// isScheme reports whether s is a URL scheme as RFC 3986 defines it, so
// that a colon inside a path ("layers/a:b") is not taken for one.
func isScheme(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// isPathByte reports whether c may appear in a layer path. The set is small
// on purpose: it holds what digests and repository layouts use and nothing
// that overlay's mount options, a shell or a URL parser treat specially.
func isPathByte(c byte) bool {
	return isAlnum(c) || strings.IndexByte("/.-_+~@=", c) >= 0
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func isAlnum(c byte) bool { return isAlpha(c) || '0' <= c && c <= '9' }
