package graphdriver

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
)

var errBroken = errors.New("layer l2 is broken")

func TestActivate(t *testing.T) {
	p := startPlugin(t, t.TempDir(), &fakeFactory{})

	status, body := p.postRaw("/Plugin.Activate", "")
	if status != http.StatusOK {
		t.Fatalf("got status %d, want 200", status)
	}
	var manifest struct{ Implements []string }
	if err := json.Unmarshal([]byte(body), &manifest); err != nil {
		t.Fatalf("manifest %q is not JSON: %v", body, err)
	}
	if !slices.Equal(manifest.Implements, []string{"GraphDriver"}) {
		t.Errorf("got Implements %q, want [GraphDriver]", manifest.Implements)
	}
}

// TestJSONEndpoints checks every JSON endpoint against the bodies dockerd
// sends and the answers it decodes: the exact JSON and status, and the
// driver call the request turned into.
func TestJSONEndpoints(t *testing.T) {
	tests := []struct {
		name       string
		path       string
		req        string // as dockerd encodes it
		driverErr  error
		wantStatus int
		wantBody   string
		wantCalls  []string
	}{
		{
			name:       "create",
			path:       PathCreate,
			req:        `{"ID":"l2","Parent":"l1","MountLabel":"label","StorageOpt":{"size":"10G"}}`,
			wantStatus: http.StatusOK,
			wantBody:   `{}`,
			wantCalls:  []string{"Create l2 parent=l1 label=label opts=map[size:10G]"},
		},
		{
			name:       "create without parent",
			path:       PathCreate,
			req:        `{"ID":"l1"}`,
			wantStatus: http.StatusOK,
			wantBody:   `{}`,
			wantCalls:  []string{"Create l1 parent= label= opts=map[]"},
		},
		{
			name:       "create fails",
			path:       PathCreate,
			req:        `{"ID":"l2","Parent":"l1"}`,
			driverErr:  errBroken,
			wantStatus: http.StatusInternalServerError,
			wantBody:   `{"Err":"layer l2 is broken"}`,
			wantCalls:  []string{"Create l2 parent=l1 label= opts=map[]"},
		},
		{
			name:       "create read-write",
			path:       PathCreateReadWrite,
			req:        `{"ID":"c1","Parent":"l2","MountLabel":"label"}`,
			wantStatus: http.StatusOK,
			wantBody:   `{}`,
			wantCalls:  []string{"CreateReadWrite c1 parent=l2 label=label opts=map[]"},
		},
		{
			name:       "create read-write fails",
			path:       PathCreateReadWrite,
			req:        `{"ID":"c1","Parent":"l2"}`,
			driverErr:  errBroken,
			wantStatus: http.StatusInternalServerError,
			wantBody:   `{"Err":"layer l2 is broken"}`,
			wantCalls:  []string{"CreateReadWrite c1 parent=l2 label= opts=map[]"},
		},
		{
			name:       "remove",
			path:       PathRemove,
			req:        `{"ID":"l2"}`,
			wantStatus: http.StatusOK,
			wantBody:   `{}`,
			wantCalls:  []string{"Remove l2"},
		},
		{
			name:       "remove fails",
			path:       PathRemove,
			req:        `{"ID":"l2"}`,
			driverErr:  errBroken,
			wantStatus: http.StatusInternalServerError,
			wantBody:   `{"Err":"layer l2 is broken"}`,
			wantCalls:  []string{"Remove l2"},
		},
		{
			name:       "get",
			path:       PathGet,
			req:        `{"ID":"l2","MountLabel":"label"}`,
			wantStatus: http.StatusOK,
			wantBody:   `{"Dir":"/fake/l2/merged"}`,
			wantCalls:  []string{"Get l2 label=label"},
		},
		{
			name:       "get fails",
			path:       PathGet,
			req:        `{"ID":"l2"}`,
			driverErr:  errBroken,
			wantStatus: http.StatusInternalServerError,
			wantBody:   `{"Err":"layer l2 is broken"}`,
			wantCalls:  []string{"Get l2 label="},
		},
		{
			name:       "put",
			path:       PathPut,
			req:        `{"ID":"l2"}`,
			wantStatus: http.StatusOK,
			wantBody:   `{}`,
			wantCalls:  []string{"Put l2"},
		},
		{
			name:       "put fails",
			path:       PathPut,
			req:        `{"ID":"l2"}`,
			driverErr:  errBroken,
			wantStatus: http.StatusInternalServerError,
			wantBody:   `{"Err":"layer l2 is broken"}`,
			wantCalls:  []string{"Put l2"},
		},
		{
			name:       "exists true",
			path:       PathExists,
			req:        `{"ID":"present"}`,
			wantStatus: http.StatusOK,
			wantBody:   `{"Exists":true}`,
			wantCalls:  []string{"Exists present"},
		},
		{
			// dockerd leaves a false Exists out, and so does the plugin.
			name:       "exists false",
			path:       PathExists,
			req:        `{"ID":"absent"}`,
			wantStatus: http.StatusOK,
			wantBody:   `{}`,
			wantCalls:  []string{"Exists absent"},
		},
		{
			name:       "status",
			path:       PathStatus,
			req:        `{}`,
			wantStatus: http.StatusOK,
			wantBody:   `{"Status":[["Backing Filesystem","extfs"],["Layers","2"]]}`,
			wantCalls:  []string{"Status"},
		},
		{
			name:       "get metadata",
			path:       PathGetMetadata,
			req:        `{"ID":"l2"}`,
			wantStatus: http.StatusOK,
			wantBody:   `{"Metadata":{"UpperDir":"/fake/l2/diff"}}`,
			wantCalls:  []string{"GetMetadata l2"},
		},
		{
			name:       "get metadata fails",
			path:       PathGetMetadata,
			req:        `{"ID":"l2"}`,
			driverErr:  errBroken,
			wantStatus: http.StatusInternalServerError,
			wantBody:   `{"Err":"layer l2 is broken"}`,
			wantCalls:  []string{"GetMetadata l2"},
		},
		{
			// Kinds travel as numbers: modify 0, add 1, delete 2.
			name:       "changes",
			path:       PathChanges,
			req:        `{"ID":"l2","Parent":"l1"}`,
			wantStatus: http.StatusOK,
			wantBody: `{"Changes":[{"Path":"/etc/motd","Kind":0},` +
				`{"Path":"/usr/bin/tool","Kind":1},{"Path":"/tmp/old","Kind":2}]}`,
			wantCalls: []string{"Changes l2 parent=l1"},
		},
		{
			name:       "changes fails",
			path:       PathChanges,
			req:        `{"ID":"l2","Parent":"l1"}`,
			driverErr:  errBroken,
			wantStatus: http.StatusInternalServerError,
			wantBody:   `{"Err":"layer l2 is broken"}`,
			wantCalls:  []string{"Changes l2 parent=l1"},
		},
		{
			name:       "diff size",
			path:       PathDiffSize,
			req:        `{"ID":"l2","Parent":"l1"}`,
			wantStatus: http.StatusOK,
			wantBody:   `{"Size":4096}`,
			wantCalls:  []string{"DiffSize l2 parent=l1"},
		},
		{
			name:       "diff size fails",
			path:       PathDiffSize,
			req:        `{"ID":"l2","Parent":"l1"}`,
			driverErr:  errBroken,
			wantStatus: http.StatusInternalServerError,
			wantBody:   `{"Err":"layer l2 is broken"}`,
			wantCalls:  []string{"DiffSize l2 parent=l1"},
		},
		{
			// dockerd reads the capabilities from a nested object.
			name:       "capabilities",
			path:       PathCapabilities,
			req:        `{}`,
			wantStatus: http.StatusOK,
			wantBody:   `{"Capabilities":{"ReproducesExactDiffs":false}}`,
			wantCalls:  []string{"Capabilities"},
		},
		{
			name:       "bad JSON",
			path:       PathCreate,
			req:        `{"ID":`,
			wantStatus: http.StatusBadRequest,
			wantBody:   `{"Err":"failed to decode request body as JSON: unexpected EOF"}`,
		},
		{
			name:       "no layer ID",
			path:       PathGet,
			req:        `{"MountLabel":"label"}`,
			wantStatus: http.StatusBadRequest,
			wantBody:   `{"Err":"request names no layer: the layer ID is empty"}`,
		},
		{
			name:       "empty body",
			path:       PathStatus,
			req:        ``,
			wantStatus: http.StatusOK,
			wantBody:   `{"Status":[["Backing Filesystem","extfs"],["Layers","2"]]}`,
			wantCalls:  []string{"Status"},
		},
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeFactory{driverErr: tc.driverErr}
			p := startPlugin(t, t.TempDir(), f)
			p.mustInit(t.TempDir())

			status, body := p.postRaw(tc.path, tc.req)
			if status != tc.wantStatus || body != tc.wantBody {
				t.Errorf("got %d %s\nwant %d %s", status, body, tc.wantStatus, tc.wantBody)
			}
			if calls := f.last(t).Calls(); !slices.Equal(calls, tc.wantCalls) {
				t.Errorf("driver calls %q, want %q", calls, tc.wantCalls)
			}

			// A failure is logged once, at level Error, with the method.
			errs := p.errorEntries()
			if failed := tc.wantStatus != http.StatusOK; failed != (len(errs) == 1) || len(errs) > 1 {
				t.Fatalf("got %d error log entries for status %d", len(errs), status)
			}
			if len(errs) == 1 {
				if method := errs[0].Data["method"]; method != strings.TrimPrefix(tc.path, "/") {
					t.Errorf("error logged with method %v", method)
				}
			}
		})
	}
}

// TestLogFields checks the fields that a call is logged with.
func TestLogFields(t *testing.T) {
	p := startPlugin(t, t.TempDir(), &fakeFactory{})
	p.mustInit(t.TempDir())
	p.logs.Reset()

	p.postJSON(PathChanges, Request{ID: "l2", Parent: "l1"})

	entry := p.logs.LastEntry()
	if entry == nil {
		t.Fatal("call was not logged")
	}
	want := map[string]string{"method": "GraphDriver.Changes", "id": "l2", "parent": "l1"}
	for field, want := range want {
		if got := entry.Data[field]; got != want {
			t.Errorf("field %s is %v, want %s", field, got, want)
		}
	}
	if len(p.logs.AllEntries()) != 1 {
		t.Errorf("got %d log entries for one call, want 1", len(p.logs.AllEntries()))
	}
}
