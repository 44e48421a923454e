package graphdriver

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
)

// TestDiffStreams sends a 64 MiB diff and checks that the plugin never
// runs far ahead of the client: the driver's stream is read only as fast
// as the client reads the answer, so the layer is never held whole.
func TestDiffStreams(t *testing.T) {
	const (
		size = 64 << 20
		// maxAhead bounds what may sit between the driver and the client
		// at any time: the handler's chunk, the HTTP buffers and both
		// socket buffers, with a wide margin. Buffering the whole layer
		// would put size there.
		maxAhead = 8 << 20
	)

	var produced atomic.Int64
	f := &fakeFactory{diff: func(string, string) io.ReadCloser {
		return io.NopCloser(&patternReader{size: size, produced: &produced})
	}}
	p := startPlugin(t, t.TempDir(), f)
	p.mustInit(t.TempDir())

	body, err := p.dockerStream("GraphDriver.Diff", Request{ID: "l2", Parent: "l1"})
	if err != nil {
		t.Fatalf("Diff: %v", err)
	}
	defer body.Close()

	var read, worstAhead int64
	buf := make([]byte, 64<<10)
	for {
		n, err := body.Read(buf)
		if bad := checkPattern(buf[:n], read); bad >= 0 {
			t.Fatalf("byte %d of the diff differs from what the driver sent", bad)
		}
		read += int64(n)
		worstAhead = max(worstAhead, produced.Load()-read)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading diff after %d bytes: %v", read, err)
		}
	}

	if read != size {
		t.Errorf("read %d bytes, want %d", read, size)
	}
	if worstAhead > maxAhead {
		t.Errorf("driver ran %d bytes ahead of the client, want at most %d", worstAhead, maxAhead)
	}
	t.Logf("driver ran at most %d bytes ahead of the client", worstAhead)
}

func TestDiffFailsBeforeFirstByte(t *testing.T) {
	tests := []struct {
		name      string
		driverErr error
		diff      func(string, string) io.ReadCloser
		wantBody  string
	}{
		{
			name:      "diff fails",
			driverErr: errBroken,
			wantBody:  `{"Err":"layer l2 is broken"}`,
		},
		{
			name: "first read fails",
			diff: func(string, string) io.ReadCloser {
				return io.NopCloser(&failingReader{r: bytes.NewReader(nil), err: errBroken})
			},
			wantBody: `{"Err":"failed to read diff of layer l2: layer l2 is broken"}`,
		},
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeFactory{driverErr: tc.driverErr, diff: tc.diff}
			p := startPlugin(t, t.TempDir(), f)
			p.mustInit(t.TempDir())

			status, body := p.postJSON(PathDiff, Request{ID: "l2", Parent: "l1"})
			if status != http.StatusInternalServerError || body != tc.wantBody {
				t.Errorf("got %d %s\nwant 500 %s", status, body, tc.wantBody)
			}
		})
	}
}

// TestDiffFailsMidway checks that a diff which fails after the answer has
// started reaches the client as a read error, not as a short tar.
func TestDiffFailsMidway(t *testing.T) {
	const good = 1 << 20

	tests := []struct {
		name string
		diff func(string, string) io.ReadCloser
	}{
		{
			name: "read fails",
			diff: func(string, string) io.ReadCloser {
				return io.NopCloser(&failingReader{r: &patternReader{size: good}, err: errBroken})
			},
		},
		{
			name: "close fails",
			diff: func(string, string) io.ReadCloser {
				return closeFunc{Reader: &patternReader{size: good}, close: func() error { return errBroken }}
			},
		},
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := startPlugin(t, t.TempDir(), &fakeFactory{diff: tc.diff})
			p.mustInit(t.TempDir())

			body, err := p.dockerStream("GraphDriver.Diff", Request{ID: "l2"})
			if err != nil {
				t.Fatalf("Diff: %v", err)
			}
			defer body.Close()

			n, err := io.Copy(io.Discard, body)
			if err == nil {
				t.Fatalf("read %d bytes and a clean end, want a read error", n)
			}
			if n > good {
				t.Errorf("read %d bytes, more than the %d the driver produced", n, good)
			}
			if errs := p.errorEntries(); len(errs) != 1 {
				t.Errorf("got %d error log entries, want 1", len(errs))
			}
		})
	}
}

func TestDiffBadRequest(t *testing.T) {
	p := startPlugin(t, t.TempDir(), &fakeFactory{})
	p.mustInit(t.TempDir())

	status, body := p.postRaw(PathDiff, `{"ID":"l2"`)
	if status != http.StatusBadRequest {
		t.Errorf("got %d %s, want 400", status, body)
	}
}

func TestApplyDiff(t *testing.T) {
	const size = 16 << 20

	tests := []struct {
		name       string
		query      string
		driverErr  error
		wantStatus int
		wantBody   string
		wantCalls  []string
	}{
		{
			name:       "with parent",
			query:      "id=l2&parent=l1",
			wantStatus: http.StatusOK,
			wantBody:   fmt.Sprintf(`{"Size":%d}`, size),
			wantCalls:  []string{fmt.Sprintf("ApplyDiff l2 parent=l1 bytes=%d", size)},
		},
		{
			// dockerd always sends parent, empty for a base layer.
			name:       "base layer",
			query:      "id=l1&parent=",
			wantStatus: http.StatusOK,
			wantBody:   fmt.Sprintf(`{"Size":%d}`, size),
			wantCalls:  []string{fmt.Sprintf("ApplyDiff l1 parent= bytes=%d", size)},
		},
		{
			name:       "driver fails",
			query:      "id=l2&parent=l1",
			driverErr:  errBroken,
			wantStatus: http.StatusInternalServerError,
			wantBody:   `{"Err":"layer l2 is broken"}`,
			wantCalls:  []string{fmt.Sprintf("ApplyDiff l2 parent=l1 bytes=%d", size)},
		},
		{
			name:       "no id",
			query:      "parent=l1",
			wantStatus: http.StatusBadRequest,
			wantBody:   `{"Err":"request names no layer: the layer ID is empty"}`,
		},
		{
			name:       "bad query",
			query:      "id=l2;parent=%zz",
			wantStatus: http.StatusBadRequest,
			wantBody: `{"Err":"failed to parse query \"id=l2;parent=%zz\": ` +
				`invalid semicolon separator in query"}`,
		},
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeFactory{driverErr: tc.driverErr}
			p := startPlugin(t, t.TempDir(), f)
			p.mustInit(t.TempDir())

			// A pipe has no length, so the body goes out chunked, as
			// dockerd sends a layer.
			pr, pw := io.Pipe()
			go func() {
				_, err := io.Copy(pw, &patternReader{size: size})
				pw.CloseWithError(err)
			}()
			resp := p.post(PathApplyDiff+"?"+tc.query, pr)
			defer resp.Body.Close()
			pr.Close()

			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			body := string(bytes.TrimSuffix(b, []byte("\n")))
			if resp.StatusCode != tc.wantStatus || body != tc.wantBody {
				t.Errorf("got %d %s\nwant %d %s", resp.StatusCode, body, tc.wantStatus, tc.wantBody)
			}
			if calls := f.last(t).Calls(); !slices.Equal(calls, tc.wantCalls) {
				t.Errorf("driver calls %q, want %q", calls, tc.wantCalls)
			}
		})
	}
}
