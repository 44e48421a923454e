package thinimage

import (
	"fmt"
	"strconv"
	"strings"
)

// version is a descriptor format version, <major>.<minor>.
type version struct {
	major, minor int
}

// legacyVersion is what the first tools wrote; it means 1.0.
var legacyVersion = version{0, 1}

// parseVersion parses <major>.<minor>, both decimal without sign or leading
// zeros. Nothing else is a version: not "1", not "1.0.0", not "v1.0".
func parseVersion(s string) (version, error) {
	major, minor, found := strings.Cut(s, ".")
	a, okA := parseVersionNumber(major)
	b, okB := parseVersionNumber(minor)
	if !found || !okA || !okB {
		return version{}, fmt.Errorf("%q is not a version of the form <major>.<minor>", s)
	}
	return version{a, b}, nil
}

// parseVersionNumber parses one part of a version. Leading zeros are
// refused so that "1.01" and "1.1" cannot both be written for one version;
// nine digits are more than any version needs and cannot overflow.
func parseVersionNumber(s string) (int, bool) {
	if s == "" || len(s) > 9 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// mustParseVersion parses one of this package's own version constants.
func mustParseVersion(s string) version {
	v, err := parseVersion(s)
	if err != nil {
		panic(err)
	}
	return v
}

func (v version) less(w version) bool {
	if v.major != w.major {
		return v.major < w.major
	}
	return v.minor < w.minor
}

func (v version) String() string {
	return strconv.Itoa(v.major) + "." + strconv.Itoa(v.minor)
}
