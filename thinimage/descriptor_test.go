package thinimage

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const (
	hexA = "5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
	hexB = "e8c1b8f3d2a0e8c1b8f3d2a0e8c1b8f3d2a0e8c1b8f3d2a0e8c1b8f3d2a0e8c1"
	urlA = "cvmfs://unpacked.cern.ch/layers/" + hexA
	urlB = "cvmfs://unpacked.cern.ch/layers/" + hexB
)

// descriptorJSON returns a descriptor document with the given version and
// layers, the latter as a JSON array literal.
func descriptorJSON(version, layers string) string {
	return `{"version": "` + version + `", "layers": ` + layers + `}`
}

// layerJSON returns one layer as a JSON object literal.
func layerJSON(digest, url string) string {
	return `{"digest": "` + digest + `", "url": "` + url + `"}`
}

func TestParseAccepts(t *testing.T) {
	twoLayers := "[" + layerJSON(hexA, urlA) + ", " + layerJSON(hexB, urlB) + "]"
	tests := []struct {
		name string
		data string
		want Descriptor
	}{
		{
			name: "full descriptor",
			data: `{
				"version": "1.0",
				"min_version": "",
				"origin": "library/ubuntu:22.04@https://registry-1.docker.io/v2",
				"layers": ` + twoLayers + `,
				"comment": "converted"
			}`,
			want: Descriptor{
				Version: "1.0",
				Origin:  "library/ubuntu:22.04@https://registry-1.docker.io/v2",
				Layers:  []Layer{{Digest: hexA, URL: urlA}, {Digest: hexB, URL: urlB}},
				Comment: "converted",
			},
		},
		{
			name: "version 1.7",
			data: descriptorJSON("1.7", twoLayers),
			want: Descriptor{Version: "1.7", Layers: []Layer{{Digest: hexA, URL: urlA}, {Digest: hexB, URL: urlB}}},
		},
		{
			name: "version 1.10",
			data: descriptorJSON("1.10", "[]"),
			want: Descriptor{Version: "1.10", Layers: []Layer{}},
		},
		{
			name: "legacy version 0.1",
			data: descriptorJSON("0.1", twoLayers),
			want: Descriptor{Version: "0.1", Layers: []Layer{{Digest: hexA, URL: urlA}, {Digest: hexB, URL: urlB}}},
		},
		{
			name: "empty layers is a scratch image",
			data: descriptorJSON("1.0", "[]"),
			want: Descriptor{Version: "1.0", Layers: []Layer{}},
		},
		{
			name: "min_version equal to the reader",
			data: `{"version": "1.3", "min_version": "1.0", "layers": []}`,
			want: Descriptor{Version: "1.3", MinVersion: "1.0", Layers: []Layer{}},
		},
		{
			name: "min_version 0.1",
			data: `{"version": "1.0", "min_version": "0.1", "layers": []}`,
			want: Descriptor{Version: "1.0", MinVersion: "0.1", Layers: []Layer{}},
		},
		{
			name: "null text fields read as empty",
			data: `{"version": "1.0", "min_version": null, "origin": null, "comment": null, "layers": []}`,
			want: Descriptor{Version: "1.0", Layers: []Layer{}},
		},
		{
			name: "unknown fields ignored",
			data: `{"version": "1.2", "signature": {"alg": "x"}, "whiteouts": "aufs", "layers": [
				{"digest": "` + hexA + `", "url": "` + urlA + `", "size": 12, "format": ["overlay"]}
			]}`,
			want: Descriptor{Version: "1.2", Layers: []Layer{{Digest: hexA, URL: urlA}}},
		},
		{
			name: "whiteout formats declared",
			data: `{"version": "1.0", "layers": [
				{"digest": "` + hexA + `", "url": "` + urlA + `", "whiteouts": "overlay"},
				{"digest": "` + hexB + `", "url": "` + urlB + `", "whiteouts": "aufs"}
			]}`,
			want: Descriptor{Version: "1.0", Layers: []Layer{
				{Digest: hexA, URL: urlA, Whiteouts: WhiteoutsOverlay},
				{Digest: hexB, URL: urlB, Whiteouts: WhiteoutsAUFS},
			}},
		},
		{
			name: "whiteout formats not understood read as unknown",
			data: `{"version": "1.0", "layers": [
				{"digest": "` + hexA + `", "url": "` + urlA + `", "whiteouts": "zfs"},
				{"digest": "` + hexB + `", "url": "` + urlB + `", "whiteouts": ["overlay"]},
				{"digest": "` + hexA + `", "url": "` + urlA + `", "whiteouts": null}
			]}`,
			want: Descriptor{Version: "1.0", Layers: []Layer{
				{Digest: hexA, URL: urlA}, {Digest: hexB, URL: urlB}, {Digest: hexA, URL: urlA},
			}},
		},
		{
			name: "keys matched without regard to case",
			data: `{"Version": "1.0", "LAYERS": [{"Digest": "` + hexA + `", "URL": "` + urlA + `"}]}`,
			want: Descriptor{Version: "1.0", Layers: []Layer{{Digest: hexA, URL: urlA}}},
		},
		{
			name: "sha256 prefix",
			data: descriptorJSON("1.0", "["+layerJSON("sha256:"+hexA, urlA)+"]"),
			want: Descriptor{Version: "1.0", Layers: []Layer{{Digest: "sha256:" + hexA, URL: urlA}}},
		},
		{
			name: "sha512 prefix",
			data: descriptorJSON("1.0", "["+layerJSON("sha512:"+hexA+hexB, urlA)+"]"),
			want: Descriptor{Version: "1.0", Layers: []Layer{{Digest: "sha512:" + hexA + hexB, URL: urlA}}},
		},
		{
			name: "algorithm with separators",
			data: descriptorJSON("1.0", "["+layerJSON("multihash+base58.v1_x-y:ab", urlA)+"]"),
			want: Descriptor{Version: "1.0", Layers: []Layer{{Digest: "multihash+base58.v1_x-y:ab", URL: urlA}}},
		},
		{
			name: "short digest",
			data: descriptorJSON("1.0", "["+layerJSON("5f70bf18a086", urlA)+"]"),
			want: Descriptor{Version: "1.0", Layers: []Layer{{Digest: "5f70bf18a086", URL: urlA}}},
		},
		{
			name: "same layer twice",
			data: descriptorJSON("1.0", "["+layerJSON(hexA, urlA)+", "+layerJSON(hexB, urlB)+", "+layerJSON(hexA, urlA)+"]"),
			want: Descriptor{Version: "1.0", Layers: []Layer{{Digest: hexA, URL: urlA}, {Digest: hexB, URL: urlB}, {Digest: hexA, URL: urlA}}},
		},
		{
			name: "same path in two repositories",
			data: descriptorJSON("1.0", "["+layerJSON(hexA, "cvmfs://a.org/x")+", "+layerJSON(hexA, "cvmfs://b.org/x/y")+"]"),
			want: Descriptor{Version: "1.0", Layers: []Layer{{Digest: hexA, URL: "cvmfs://a.org/x"}, {Digest: hexA, URL: "cvmfs://b.org/x/y"}}},
		},
		{
			name: "sibling whose name extends another",
			data: descriptorJSON("1.0", "["+layerJSON(hexA, "cvmfs://r/a")+", "+layerJSON(hexA, "cvmfs://r/a-b")+", "+layerJSON(hexA, "cvmfs://r/ab/c")+"]"),
			want: Descriptor{Version: "1.0", Layers: []Layer{{Digest: hexA, URL: "cvmfs://r/a"}, {Digest: hexA, URL: "cvmfs://r/a-b"}, {Digest: hexA, URL: "cvmfs://r/ab/c"}}},
		},
		{
			name: "url kept as written",
			data: descriptorJSON("1.0", "["+layerJSON(hexA, "cvmfs://repo/a/../b/")+"]"),
			want: Descriptor{Version: "1.0", Layers: []Layer{{Digest: hexA, URL: "cvmfs://repo/a/../b/"}}},
		},
		{
			name: "surrounding whitespace",
			data: "\n\t " + descriptorJSON("1.0", "[]") + "\n",
			want: Descriptor{Version: "1.0", Layers: []Layer{}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse([]byte(tt.data))
			if err != nil {
				t.Fatalf("Parse failed: %v", err)
			}
			if !reflect.DeepEqual(*d, tt.want) {
				t.Fatalf("Parse = %+v\nwant    %+v", *d, tt.want)
			}
			if d.Layers == nil {
				t.Fatal("Layers is nil; an accepted descriptor always has a list")
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	one := "[" + layerJSON(hexA, urlA) + "]"
	withLayer := func(digest, url string) string {
		return descriptorJSON("1.0", "["+layerJSON(hexB, urlB)+", "+layerJSON(digest, url)+"]")
	}
	tests := []struct {
		name      string
		data      string
		wantField string
		want      string // the whole message
	}{
		// The document.
		{"empty input", "", "", "thin image descriptor: is empty; expected a JSON object"},
		{"only whitespace", " \n\t", "", "thin image descriptor: is empty; expected a JSON object"},
		{
			"bad JSON", "{\n  \"version\": \"1.0\",\n  \"layers\": [}\n}", "",
			"thin image descriptor: invalid JSON at line 3, column 14 (byte 36): invalid character '}' looking for beginning of value",
		},
		{
			"truncated", `{"version": "1.0", "layers": [`, "",
			"thin image descriptor: invalid JSON at line 1, column 30 (byte 30): unexpected end of JSON input",
		},
		{
			"trailing data", descriptorJSON("1.0", "[]") + " x", "",
			"thin image descriptor: invalid JSON at line 1, column 34 (byte 34): invalid character 'x' after top-level value",
		},
		{"byte order mark", "\uFEFF" + descriptorJSON("1.0", "[]"), "", ""},
		{"top-level array", "[]", "", "thin image descriptor: must be an object, not an array"},
		{"top-level string", `"thin"`, "", "thin image descriptor: must be an object, not a string"},
		{"top-level null", "null", "layers", `thin image descriptor: field "layers": is missing; an image without layers has "layers": []`},

		// Layers.
		{"layers missing", `{"version": "1.0"}`, "layers", `thin image descriptor: field "layers": is missing; an image without layers has "layers": []`},
		{"layers null", descriptorJSON("1.0", "null"), "layers", `thin image descriptor: field "layers": is null; an image without layers has "layers": []`},
		{"layers object", descriptorJSON("1.0", "{}"), "layers", `thin image descriptor: field "layers": must be an array, not an object`},
		{"layers string", descriptorJSON("1.0", `"x"`), "layers", `thin image descriptor: field "layers": must be an array, not a string`},
		{"layer number", descriptorJSON("1.0", "["+layerJSON(hexA, urlA)+", 7]"), "layers[1]", `thin image descriptor: field "layers[1]": must be an object, not a number`},
		{"layer null", descriptorJSON("1.0", "[null]"), "layers[0]", `thin image descriptor: field "layers[0]": must be an object, not null`},
		{"url number", descriptorJSON("1.0", `[{"digest": "`+hexA+`", "url": 5}]`), "layers[0].url", `thin image descriptor: field "layers[0].url": must be a string, not a number`},
		{"digest boolean", descriptorJSON("1.0", `[{"digest": true, "url": "`+urlA+`"}]`), "layers[0].digest", `thin image descriptor: field "layers[0].digest": must be a string, not a boolean`},

		// Versions.
		{"version number", `{"version": 1.0, "layers": []}`, "version", `thin image descriptor: field "version": must be a string, not a number`},
		{"version missing", `{"layers": []}`, "version", `thin image descriptor: field "version": is missing or empty; expected a format version such as "1.0"`},
		{"version empty", descriptorJSON("", "[]"), "version", `thin image descriptor: field "version": is missing or empty; expected a format version such as "1.0"`},
		{"version 2.0", descriptorJSON("2.0", one), "version", `thin image descriptor: field "version": version 2.0 is not supported, this plugin reads versions 1.x and 0.1`},
		{"version 0.2", descriptorJSON("0.2", one), "version", `thin image descriptor: field "version": version 0.2 is not supported, this plugin reads versions 1.x and 0.1`},
		{"version 0.0", descriptorJSON("0.0", one), "version", `thin image descriptor: field "version": version 0.0 is not supported, this plugin reads versions 1.x and 0.1`},
		{"version without minor", descriptorJSON("1", one), "version", `thin image descriptor: field "version": "1" is not a version of the form <major>.<minor>`},
		{"version with patch", descriptorJSON("1.0.0", one), "version", `thin image descriptor: field "version": "1.0.0" is not a version of the form <major>.<minor>`},
		{"version with v", descriptorJSON("v1.0", one), "version", `thin image descriptor: field "version": "v1.0" is not a version of the form <major>.<minor>`},
		{"version with x", descriptorJSON("1.x", one), "version", `thin image descriptor: field "version": "1.x" is not a version of the form <major>.<minor>`},
		{"version with space", descriptorJSON(" 1.0", one), "version", `thin image descriptor: field "version": " 1.0" is not a version of the form <major>.<minor>`},
		{"version negative", descriptorJSON("1.-1", one), "version", `thin image descriptor: field "version": "1.-1" is not a version of the form <major>.<minor>`},
		{"version with plus", descriptorJSON("+1.0", one), "version", `thin image descriptor: field "version": "+1.0" is not a version of the form <major>.<minor>`},
		{"version leading zero", descriptorJSON("01.0", one), "version", `thin image descriptor: field "version": "01.0" is not a version of the form <major>.<minor>`},
		{"version minor leading zero", descriptorJSON("1.01", one), "version", `thin image descriptor: field "version": "1.01" is not a version of the form <major>.<minor>`},
		{"version too long", descriptorJSON("1.1234567890", one), "version", `thin image descriptor: field "version": "1.1234567890" is not a version of the form <major>.<minor>`},
		{"version dot only", descriptorJSON(".", one), "version", `thin image descriptor: field "version": "." is not a version of the form <major>.<minor>`},
		{
			"min_version 2.0", `{"version": "2.0", "min_version": "2.0", "layers": []}`, "min_version",
			`thin image descriptor: field "min_version": requires reader version 2.0, this plugin implements 1.0`,
		},
		{
			"min_version 1.1", `{"version": "1.1", "min_version": "1.1", "layers": []}`, "min_version",
			`thin image descriptor: field "min_version": requires reader version 1.1, this plugin implements 1.0`,
		},
		{
			"min_version malformed", `{"version": "1.0", "min_version": "latest", "layers": []}`, "min_version",
			`thin image descriptor: field "min_version": "latest" is not a version of the form <major>.<minor>`,
		},
		{
			"min_version number", `{"version": "1.0", "min_version": 1, "layers": []}`, "min_version",
			`thin image descriptor: field "min_version": must be a string, not a number`,
		},

		// Digests.
		{"digest empty", withLayer("", urlA), "layers[1].digest", `thin image descriptor: field "layers[1].digest": is missing or empty`},
		{"digest missing", descriptorJSON("1.0", `[{"url": "`+urlA+`"}]`), "layers[0].digest", `thin image descriptor: field "layers[0].digest": is missing or empty`},
		{
			"digest not hex", withLayer("xyz", urlA), "layers[1].digest",
			`thin image descriptor: field "layers[1].digest": "xyz" is not a digest; expected lowercase hex, optionally after an algorithm such as "sha256:"`,
		},
		{"digest upper-case hex", withLayer("5F70BF18", urlA), "layers[1].digest", ""},
		{"digest prefixed not hex", withLayer("sha256:xyz", urlA), "layers[1].digest", ""},
		{"digest prefix only", withLayer("sha256:", urlA), "layers[1].digest", ""},
		{"digest empty algorithm", withLayer(":"+hexA, urlA), "layers[1].digest", ""},
		{"digest upper-case algorithm", withLayer("SHA256:"+hexA, urlA), "layers[1].digest", ""},
		{"digest algorithm ends with separator", withLayer("sha256-:"+hexA, urlA), "layers[1].digest", ""},
		{"digest algorithm doubled separator", withLayer("sha--256:"+hexA, urlA), "layers[1].digest", ""},
		{"digest two colons", withLayer("sha256:sha256:"+hexA, urlA), "layers[1].digest", ""},
		{"digest with space", withLayer(hexA+" ", urlA), "layers[1].digest", ""},

		// URLs; url_test.go covers each rule, these show the field.
		{"url empty", withLayer(hexA, ""), "layers[1].url", `thin image descriptor: field "layers[1].url": is missing or empty; expected cvmfs://<repository>/<path>`},
		{"url missing", descriptorJSON("1.0", `[{"digest": "`+hexA+`"}]`), "layers[0].url", `thin image descriptor: field "layers[0].url": is missing or empty; expected cvmfs://<repository>/<path>`},
		{"url http", descriptorJSON("1.0", "["+layerJSON(hexA, urlA)+", "+layerJSON(hexA, urlA)+", "+layerJSON(hexA, "http://example.org/x")+"]"), "layers[2].url", `thin image descriptor: field "layers[2].url": scheme "http" is not supported, only cvmfs://`},
		{"url escapes", withLayer(hexA, "cvmfs://repo/../../etc"), "layers[1].url", `thin image descriptor: field "layers[1].url": path "../../etc" leads out of the repository`},
		{"url absolute", withLayer(hexA, "cvmfs://repo//etc"), "layers[1].url", `thin image descriptor: field "layers[1].url": path "/etc" is absolute; it must be relative to the repository`},
		{"url no path", withLayer(hexA, "cvmfs://repo"), "layers[1].url", `thin image descriptor: field "layers[1].url": names no directory inside repository "repo"; expected cvmfs://repo/<path>`},
		{"url opaque", withLayer(hexA, "cvmfs:repo/x"), "layers[1].url", ""},
		{"url percent", withLayer(hexA, "cvmfs://repo/%2e%2e/etc"), "layers[1].url", ""},

		// Overlapping directories.
		{
			"layer inside an earlier one",
			descriptorJSON("1.0", "["+layerJSON(hexA, "cvmfs://repo/a")+", "+layerJSON(hexB, "cvmfs://repo/a/b/c")+"]"),
			"layers[1].url",
			`thin image descriptor: field "layers[1].url": cvmfs://repo/a/b/c lies inside cvmfs://repo/a, the directory of layers[0]; overlay refuses layer directories that overlap`,
		},
		{
			"layer inside a later one, written differently",
			descriptorJSON("1.0", "["+layerJSON(hexA, "cvmfs://repo/x")+", "+layerJSON(hexA, "cvmfs://repo/a/./b/")+", "+layerJSON(hexB, "cvmfs://repo/a/")+"]"),
			"layers[1].url",
			`thin image descriptor: field "layers[1].url": cvmfs://repo/a/b lies inside cvmfs://repo/a, the directory of layers[2]; overlay refuses layer directories that overlap`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse([]byte(tt.data))
			if err == nil {
				t.Fatalf("Parse = %+v, want an error", d)
			}
			if d != nil {
				t.Errorf("Parse returned a descriptor with its error")
			}
			var descErr *DescriptorError
			if !errors.As(err, &descErr) {
				t.Fatalf("error %v is %T, want *DescriptorError", err, err)
			}
			if descErr.Field != tt.wantField {
				t.Errorf("Field = %q, want %q", descErr.Field, tt.wantField)
			}
			if tt.want != "" && err.Error() != tt.want {
				t.Errorf("message:\n got %s\nwant %s", err, tt.want)
			}
			if msg := err.Error(); strings.ToLower(msg[:1]) != msg[:1] || strings.HasSuffix(msg, ".") || strings.Contains(msg, "\n") {
				t.Errorf("message %q must be one lowercase line without a trailing period", msg)
			}
		})
	}
}

func TestParseKeepsCause(t *testing.T) {
	tests := []struct {
		name  string
		data  string
		check func(error) bool
	}{
		{"syntax error", "{", func(err error) bool {
			var target *json.SyntaxError
			return errors.As(err, &target)
		}},
		{"type error", `{"version": 1, "layers": []}`, func(err error) bool {
			var target *json.UnmarshalTypeError
			return errors.As(err, &target)
		}},
		{"url error", descriptorJSON("1.0", "["+layerJSON(hexA, "ftp://x/y")+"]"), func(err error) bool {
			var target *URLError
			return errors.As(err, &target) && target.URL == "ftp://x/y"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.data))
			if err == nil || !tt.check(err) {
				t.Fatalf("error %v does not keep its cause", err)
			}
		})
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	write := func(t *testing.T, name string, data []byte) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}

	t.Run("valid", func(t *testing.T) {
		path := write(t, "valid.json", []byte(descriptorJSON("1.0", "["+layerJSON(hexA, urlA)+"]")))
		d, err := ReadFile(path)
		if err != nil {
			t.Fatalf("ReadFile failed: %v", err)
		}
		if want := []Layer{{Digest: hexA, URL: urlA}}; !reflect.DeepEqual(d.Layers, want) {
			t.Fatalf("Layers = %+v, want %+v", d.Layers, want)
		}
	})

	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(dir, "absent.json")
		_, err := ReadFile(path)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("error %v does not match fs.ErrNotExist", err)
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("error %q does not name %s", err, path)
		}
	})

	t.Run("malformed names the file", func(t *testing.T) {
		path := write(t, "bad.json", []byte(`{"version": "1.0"}`))
		_, err := ReadFile(path)
		var descErr *DescriptorError
		if !errors.As(err, &descErr) || descErr.Path != path {
			t.Fatalf("error %v is not a *DescriptorError for %s", err, path)
		}
		want := "thin image descriptor " + path + `: field "layers": is missing; an image without layers has "layers": []`
		if err.Error() != want {
			t.Errorf("message:\n got %s\nwant %s", err, want)
		}
	})

	t.Run("too large", func(t *testing.T) {
		big := descriptorJSON("1.0", "[]") + strings.Repeat(" ", MaxDescriptorSize)
		path := write(t, "big.json", []byte(big))
		_, err := ReadFile(path)
		var descErr *DescriptorError
		if !errors.As(err, &descErr) || descErr.Path != path {
			t.Fatalf("error %v is not a *DescriptorError for %s", err, path)
		}
		if want := "thin image descriptor " + path + ": is larger than 1048576 bytes"; err.Error() != want {
			t.Errorf("message:\n got %s\nwant %s", err, want)
		}
	})

	t.Run("exactly the limit", func(t *testing.T) {
		doc := descriptorJSON("1.0", "[]")
		path := write(t, "limit.json", []byte(doc+strings.Repeat(" ", MaxDescriptorSize-len(doc))))
		if _, err := ReadFile(path); err != nil {
			t.Fatalf("ReadFile failed: %v", err)
		}
	})

	t.Run("directory", func(t *testing.T) {
		if _, err := ReadFile(dir); err == nil {
			t.Fatal("ReadFile of a directory succeeded")
		}
	})
}

func TestMarshal(t *testing.T) {
	d := &Descriptor{
		Version: "1.0",
		Origin:  "library/ubuntu:22.04@https://registry-1.docker.io/v2?a=1&b=<2>",
		Layers:  []Layer{{Digest: "sha256:" + hexA, URL: urlA}, {Digest: hexB, URL: urlB}},
	}
	want := `{
  "version": "1.0",
  "min_version": "",
  "origin": "library/ubuntu:22.04@https://registry-1.docker.io/v2?a=1&b=<2>",
  "layers": [
    {
      "digest": "sha256:` + hexA + `",
      "url": "` + urlA + `"
    },
    {
      "digest": "` + hexB + `",
      "url": "` + urlB + `"
    }
  ],
  "comment": ""
}
`
	got, err := d.Marshal()
	if err != nil {
		t.Fatalf("Marshal failed: %v", err)
	}
	if string(got) != want {
		t.Fatalf("Marshal =\n%s\nwant\n%s", got, want)
	}
	again, err := d.Marshal()
	if err != nil || !bytes.Equal(again, got) {
		t.Fatalf("second Marshal differs: %s, %v", again, err)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   Descriptor
		want Descriptor // what Parse returns for Marshal's output
	}{
		{
			name: "full",
			in: Descriptor{
				Version: "1.0", MinVersion: "1.0", Origin: "library/alpine:3", Comment: "a \"quoted\" comment\n",
				Layers: []Layer{{Digest: hexA, URL: urlA}, {Digest: "sha512:" + hexB, URL: urlB}},
			},
			want: Descriptor{
				Version: "1.0", MinVersion: "1.0", Origin: "library/alpine:3", Comment: "a \"quoted\" comment\n",
				Layers: []Layer{{Digest: hexA, URL: urlA}, {Digest: "sha512:" + hexB, URL: urlB}},
			},
		},
		{
			name: "zero value becomes a scratch image",
			in:   Descriptor{},
			want: Descriptor{Version: WriterVersion, Layers: []Layer{}},
		},
		{
			name: "legacy version kept",
			in:   Descriptor{Version: "0.1", Layers: []Layer{{Digest: hexA, URL: urlA}}},
			want: Descriptor{Version: "0.1", Layers: []Layer{{Digest: hexA, URL: urlA}}},
		},
		{
			name: "duplicate layers kept",
			in:   Descriptor{Layers: []Layer{{Digest: hexA, URL: urlA}, {Digest: hexA, URL: urlA}}},
			want: Descriptor{Version: WriterVersion, Layers: []Layer{{Digest: hexA, URL: urlA}, {Digest: hexA, URL: urlA}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			data, err := in.Marshal()
			if err != nil {
				t.Fatalf("Marshal failed: %v", err)
			}
			if !reflect.DeepEqual(in, tt.in) {
				t.Fatalf("Marshal modified its receiver: %+v", in)
			}
			if !bytes.HasSuffix(data, []byte("}\n")) {
				t.Errorf("output does not end in a newline: %q", data)
			}
			d, err := Parse(data)
			if err != nil {
				t.Fatalf("Parse of Marshal output failed: %v\n%s", err, data)
			}
			if !reflect.DeepEqual(*d, tt.want) {
				t.Fatalf("round trip = %+v\nwant         %+v", *d, tt.want)
			}
		})
	}
}

func TestMarshalRefuses(t *testing.T) {
	tests := []struct {
		name      string
		in        Descriptor
		wantField string
	}{
		{"unsupported version", Descriptor{Version: "2.0"}, "version"},
		{"malformed version", Descriptor{Version: "1"}, "version"},
		{"min_version too high", Descriptor{MinVersion: "3.1"}, "min_version"},
		{"empty digest", Descriptor{Layers: []Layer{{Digest: "", URL: urlA}}}, "layers[0].digest"},
		{"bad url", Descriptor{Layers: []Layer{{Digest: hexA, URL: urlA}, {Digest: hexA, URL: "cvmfs://repo/../x"}}}, "layers[1].url"},
		{"overlap", Descriptor{Layers: []Layer{{Digest: hexA, URL: "cvmfs://r/a/b"}, {Digest: hexA, URL: "cvmfs://r/a"}}}, "layers[0].url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := tt.in.Marshal()
			var descErr *DescriptorError
			if !errors.As(err, &descErr) {
				t.Fatalf("Marshal = %q, %v; want a *DescriptorError", data, err)
			}
			if descErr.Field != tt.wantField {
				t.Errorf("Field = %q, want %q", descErr.Field, tt.wantField)
			}
		})
	}
}
