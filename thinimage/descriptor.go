package thinimage

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

const (
	// DescriptorName is the descriptor's file name at a thin layer's root.
	DescriptorName = "thin.json"

	// DefaultRoot is where CernVM-FS repositories are mounted unless the
	// plugin is configured otherwise.
	DefaultRoot = "/cvmfs"

	// ReaderVersion is the highest descriptor version this reader
	// implements; a descriptor whose min_version is higher is refused.
	ReaderVersion = "1.0"

	// WriterVersion is the version Marshal writes when none is set.
	WriterVersion = "1.0"

	// MaxDescriptorSize bounds what ReadFile reads. A descriptor takes about
	// 200 bytes per layer, so 1 MiB holds thousands of layers, far beyond
	// what overlay can stack, while a hostile image cannot make the plugin
	// read a file of any size.
	MaxDescriptorSize = 1 << 20
)

// Descriptor is the content of thin.json.
type Descriptor struct {
	Version    string  `json:"version"`
	MinVersion string  `json:"min_version"`
	Origin     string  `json:"origin"`
	Layers     []Layer `json:"layers"` // base first
	Comment    string  `json:"comment"`
}

// Layer is one real layer of a thin image.
type Layer struct {
	Digest string `json:"digest"`
	URL    string `json:"url"`
	// Whiteouts is the format the layer directory records deletions in,
	// as its writer declares it: WhiteoutsOverlay, WhiteoutsAUFS, or
	// empty when unknown. Readers treat any other value as unknown.
	Whiteouts string `json:"whiteouts,omitempty"`
}

// Whiteout formats a layer may declare.
const (
	// WhiteoutsOverlay declares that the layer records deletions only as
	// overlay whiteouts and opaque directories and holds no AUFS markers,
	// so a driver need not walk it looking for them.
	WhiteoutsOverlay = "overlay"
	// WhiteoutsAUFS declares that the layer records deletions as AUFS
	// markers, as cvmfs_server ingest leaves them.
	WhiteoutsAUFS = "aufs"
)

// HasNoAUFSMarkers reports whether the layer's writer declared that it
// holds no AUFS markers.
func (l Layer) HasNoAUFSMarkers() bool { return l.Whiteouts == WhiteoutsOverlay }

// Parse decodes and validates a descriptor. Every error it returns is a
// *DescriptorError naming the offending field; the package documentation
// lists what is accepted. A descriptor that Parse accepts resolves: Resolve
// fails on it only for an unusable root.
func Parse(data []byte) (*Descriptor, error) {
	d, err := parse(data)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// ReadFile reads and parses the descriptor at path. A descriptor that
// cannot be parsed yields a *DescriptorError whose Path is set; a file that
// cannot be read yields an error wrapping the *fs.PathError, so that
// errors.Is(err, fs.ErrNotExist) tells a missing file.
func ReadFile(path string) (*Descriptor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read thin image descriptor: %w", err)
	}
	defer f.Close()

	data, err := io.ReadAll(io.LimitReader(f, MaxDescriptorSize+1))
	if err != nil {
		return nil, fmt.Errorf("failed to read thin image descriptor %s: %w", path, err)
	}
	if len(data) > MaxDescriptorSize {
		reason := fmt.Sprintf("is larger than %d bytes", MaxDescriptorSize)
		return nil, &DescriptorError{Path: path, Reason: reason}
	}

	d, derr := parse(data)
	if derr != nil {
		derr.Path = path
		return nil, derr
	}
	return d, nil
}

// Marshal encodes the descriptor the same way every time: fields in a fixed
// order, indented by two spaces, '<', '>' and '&' left as they are, and a
// trailing newline. An empty Version is written as WriterVersion and nil
// Layers as an empty list, since readers refuse both zero values. Marshal
// refuses, with a *DescriptorError, a descriptor that Parse would refuse.
// Fields that this package does not know are not kept.
func (d *Descriptor) Marshal() ([]byte, error) {
	out := *d
	if out.Version == "" {
		out.Version = WriterVersion
	}
	if out.Layers == nil {
		out.Layers = []Layer{}
	}
	if err := out.validate(); err != nil {
		return nil, err
	}

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(&out); err != nil {
		return nil, fmt.Errorf("failed to encode thin image descriptor: %w", err)
	}
	return buf.Bytes(), nil
}

// rawDescriptor and rawLayer hold the undecoded fields, so that a field of
// the wrong type is reported with its full path ("layers[2].url"), which
// decoding straight into Descriptor cannot give. Keys are matched without
// regard to case, as encoding/json does for Descriptor itself.
type rawDescriptor struct {
	Version    json.RawMessage `json:"version"`
	MinVersion json.RawMessage `json:"min_version"`
	Origin     json.RawMessage `json:"origin"`
	Layers     json.RawMessage `json:"layers"`
	Comment    json.RawMessage `json:"comment"`
}

type rawLayer struct {
	Digest    json.RawMessage `json:"digest"`
	URL       json.RawMessage `json:"url"`
	Whiteouts json.RawMessage `json:"whiteouts"`
}

func parse(data []byte) (*Descriptor, *DescriptorError) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &DescriptorError{Reason: "is empty; expected a JSON object"}
	}
	var raw rawDescriptor
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, jsonError(data, "", "an object", err)
	}

	d := &Descriptor{}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  *string
	}{
		{"version", raw.Version, &d.Version},
		{"min_version", raw.MinVersion, &d.MinVersion},
		{"origin", raw.Origin, &d.Origin},
		{"comment", raw.Comment, &d.Comment},
	} {
		if err := decodeString(f.raw, f.name, f.dst); err != nil {
			return nil, err
		}
	}
	layers, err := decodeLayers(raw.Layers)
	if err != nil {
		return nil, err
	}
	d.Layers = layers

	if err := d.validate(); err != nil {
		return nil, err
	}
	return d, nil
}

// decodeLayers decodes the "layers" list. Absent and null are refused, so
// that a descriptor cut short or written by a broken tool is not taken for
// an image without layers, which must say "layers": [].
func decodeLayers(raw json.RawMessage) ([]Layer, *DescriptorError) {
	const scratch = `; an image without layers has "layers": []`
	switch {
	case raw == nil:
		return nil, &DescriptorError{Field: "layers", Reason: "is missing" + scratch}
	case isNull(raw):
		return nil, &DescriptorError{Field: "layers", Reason: "is null" + scratch}
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, jsonError(raw, "layers", "an array", err)
	}

	layers := make([]Layer, len(elems))
	for i, elem := range elems {
		field := fmt.Sprintf("layers[%d]", i)
		if isNull(elem) {
			return nil, &DescriptorError{Field: field, Reason: "must be an object, not null"}
		}
		var rl rawLayer
		if err := json.Unmarshal(elem, &rl); err != nil {
			return nil, jsonError(elem, field, "an object", err)
		}
		if err := decodeString(rl.Digest, field+".digest", &layers[i].Digest); err != nil {
			return nil, err
		}
		if err := decodeString(rl.URL, field+".url", &layers[i].URL); err != nil {
			return nil, err
		}
		// A declaration this reader cannot read is no declaration: the
		// layer is then looked at as any undeclared one.
		var whiteouts string
		if json.Unmarshal(rl.Whiteouts, &whiteouts) == nil &&
			(whiteouts == WhiteoutsOverlay || whiteouts == WhiteoutsAUFS) {
			layers[i].Whiteouts = whiteouts
		}
	}
	return layers, nil
}

// decodeString decodes a string field; absent and null leave it empty.
func decodeString(raw json.RawMessage, field string, dst *string) *DescriptorError {
	if raw == nil || isNull(raw) {
		return nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return jsonError(raw, field, "a string", err)
	}
	return nil
}

func isNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}

// jsonError turns an encoding/json error into a DescriptorError. want says
// what the field should have been, for type errors.
func jsonError(data []byte, field, want string, err error) *DescriptorError {
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) {
		line, col := position(data, syntaxErr.Offset)
		reason := fmt.Sprintf("invalid JSON at line %d, column %d (byte %d): %v",
			line, col, syntaxErr.Offset, syntaxErr)
		return &DescriptorError{Field: field, Reason: reason, Err: err}
	}
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		reason := fmt.Sprintf("must be %s, not %s", want, jsonKind(typeErr.Value))
		return &DescriptorError{Field: field, Reason: reason, Err: err}
	}
	return &DescriptorError{Field: field, Err: err}
}

// position returns the line and column, both from 1, of the byte that a
// json.SyntaxError with the given offset stopped at. The offset counts the
// bytes read, so the offending byte is the one before it.
func position(data []byte, offset int64) (line, col int) {
	end := int(min(max(offset-1, 0), int64(len(data))))
	before := data[:end]
	line = 1 + bytes.Count(before, []byte("\n"))
	col = end - bytes.LastIndexByte(before, '\n')
	return line, col
}

// jsonKind names a JSON value kind, as encoding/json reports it, with an
// article.
func jsonKind(value string) string {
	kind, _, _ := strings.Cut(value, " ") // "number 1e999" for a value out of range
	switch kind {
	case "array", "object":
		return "an " + kind
	case "bool":
		return "a boolean"
	case "":
		return "something else"
	default:
		return "a " + kind
	}
}

// validate checks everything but the JSON types, which decoding already
// did. Parse and Marshal share it so that what one writes the other reads.
func (d *Descriptor) validate() *DescriptorError {
	if err := checkVersions(d.Version, d.MinVersion); err != nil {
		return err
	}
	_, err := locateLayers(d.Layers)
	return err
}

// checkVersions checks version and min_version. A min_version beyond this
// reader is reported before an unsupported version, because it is the
// writer's own statement of what a reader needs.
func checkVersions(ver, minVer string) *DescriptorError {
	if ver == "" {
		return fieldError("version", `is missing or empty; expected a format version such as %q`,
			WriterVersion)
	}
	v, err := parseVersion(ver)
	if err != nil {
		return fieldError("version", "%v", err)
	}

	if minVer != "" {
		m, err := parseVersion(minVer)
		if err != nil {
			return fieldError("min_version", "%v", err)
		}
		if mustParseVersion(ReaderVersion).less(m) {
			return fieldError("min_version",
				"requires reader version %s, this plugin implements %s", minVer, ReaderVersion)
		}
	}

	if v.major != 1 && v != legacyVersion {
		return fieldError("version",
			"version %s is not supported, this plugin reads versions 1.x and 0.1", ver)
	}
	return nil
}

// fieldError returns a DescriptorError for field with a formatted reason.
func fieldError(field, format string, args ...any) *DescriptorError {
	return &DescriptorError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// locateLayers checks every layer's digest and URL and returns the layers'
// locations, base first. It refuses a layer directory inside another,
// which the kernel refuses to stack; the same directory twice is allowed
// (see TopFirst).
func locateLayers(layers []Layer) ([]Location, *DescriptorError) {
	locs := make([]Location, len(layers))
	for i, l := range layers {
		if reason := checkDigest(l.Digest); reason != "" {
			return nil, fieldError(fmt.Sprintf("layers[%d].digest", i), "%s", reason)
		}
		field := fmt.Sprintf("layers[%d].url", i)
		if l.URL == "" {
			return nil, fieldError(field, "is missing or empty; expected %s", urlForm)
		}
		loc, err := ParseURL(l.URL)
		if err != nil {
			reason := err.Error()
			var urlErr *URLError
			if errors.As(err, &urlErr) {
				reason = urlErr.Reason
			}
			return nil, &DescriptorError{Field: field, Reason: reason, Err: err}
		}
		locs[i] = loc
	}

	// Look every directory's ancestors up among the layers: a walk along
	// each path, rather than a comparison of every pair, so that a long
	// hostile list costs no more than its length.
	first := make(map[string]int, len(locs))
	for i, loc := range locs {
		key := loc.Repository + "/" + loc.Path
		if _, ok := first[key]; !ok {
			first[key] = i
		}
	}
	for i, loc := range locs {
		key := loc.Repository + "/" + loc.Path
		for j := len(key) - 1; j > len(loc.Repository); j-- {
			if key[j] != '/' {
				continue
			}
			if k, ok := first[key[:j]]; ok {
				return nil, fieldError(fmt.Sprintf("layers[%d].url", i),
					"%s lies inside %s, the directory of layers[%d]; %s",
					loc, locs[k], k, "overlay refuses layer directories that overlap")
			}
		}
	}
	return locs, nil
}

// checkDigest returns why digest is not a hex digest with an optional
// algorithm prefix, or "" when it is one. Hex must be lowercase, as in every
// image manifest; its length is not checked because only messages use it.
func checkDigest(digest string) string {
	if digest == "" {
		return "is missing or empty"
	}
	hex := digest
	algorithm, rest, found := strings.Cut(digest, ":")
	if found {
		hex = rest
	}
	if found && !isAlgorithm(algorithm) || !isLowerHex(hex) {
		return fmt.Sprintf("%q is not a digest; expected lowercase hex, "+
			"optionally after an algorithm such as \"sha256:\"", digest)
	}
	return ""
}

// isAlgorithm reports whether s is a digest algorithm as the OCI image
// specification writes them: lowercase letters and digits, in parts joined
// by one of "+._-".
func isAlgorithm(s string) bool {
	afterSeparator := true // a separator may not come first
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			afterSeparator = false
		case strings.IndexByte("+._-", c) >= 0 && !afterSeparator:
			afterSeparator = true
		default:
			return false
		}
	}
	return !afterSeparator // nor last; an empty s fails here too
}

func isLowerHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
