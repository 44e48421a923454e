package graphdriver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/docker/go-plugins-helpers/sdk"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
)

// pluginMimeType is the Accept header dockerd's plugin client sends.
const pluginMimeType = "application/vnd.docker.plugins.v1.2+json"

// fakeFactory is an InitFunc that builds fakeDrivers and keeps them.
type fakeFactory struct {
	// err, when set, fails every Init.
	err error
	// driverErr is the err of every driver built.
	driverErr error
	// diff is the diff of every driver built.
	diff func(id, parent string) io.ReadCloser

	mu    sync.Mutex
	built []*fakeDriver
}

func (f *fakeFactory) init(opts InitOptions) (Driver, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	d := &fakeDriver{opts: opts, err: f.driverErr, diff: f.diff}
	f.built = append(f.built, d)
	return d, nil
}

// drivers returns the drivers built so far, oldest first.
func (f *fakeFactory) drivers() []*fakeDriver {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*fakeDriver(nil), f.built...)
}

// last returns the newest driver built; the test fails if there is none.
func (f *fakeFactory) last(t *testing.T) *fakeDriver {
	t.Helper()
	built := f.drivers()
	if len(built) == 0 {
		t.Fatal("no driver was built")
	}
	return built[len(built)-1]
}

// testPlugin is a Handler served on a real unix socket through the sdk,
// as the plugin binary serves it, and a client that talks to it as
// dockerd's plugin client does.
type testPlugin struct {
	t       *testing.T
	handler *Handler
	client  *http.Client
	logs    *logtest.Hook
}

// startPlugin serves a new Handler that saves its state in stateDir.
func startPlugin(t *testing.T, stateDir string, f *fakeFactory) *testPlugin {
	t.Helper()

	logger, logs := logtest.NewNullLogger()
	logger.SetLevel(logrus.DebugLevel)

	h, err := NewHandler(Config{Init: f.init, StateDir: stateDir, Log: logrus.NewEntry(logger)})
	if err != nil {
		t.Fatalf("NewHandler: %v", err)
	}
	s := sdk.NewHandler(Manifest)
	h.Register(s)

	// Socket paths are limited to 108 bytes, which t.TempDir can exceed.
	sockDir, err := os.MkdirTemp("", "gd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "plugin.sock")

	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	t.Cleanup(func() { l.Close() })

	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	t.Cleanup(client.CloseIdleConnections)

	return &testPlugin{t: t, handler: h, client: client, logs: logs}
}

// post sends body to path as dockerd does: a POST with its Accept header.
func (p *testPlugin) post(path string, body io.Reader) *http.Response {
	p.t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://plugin"+path, body)
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Add("Accept", pluginMimeType)
	resp, err := p.client.Do(req)
	if err != nil {
		p.t.Fatalf("POST %s: %v", path, err)
	}
	return resp
}

// postRaw sends a raw body and returns the status and the whole answer.
func (p *testPlugin) postRaw(path, body string) (int, string) {
	p.t.Helper()
	resp := p.post(path, strings.NewReader(body))
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatalf("reading answer of %s: %v", path, err)
	}
	return resp.StatusCode, strings.TrimSuffix(string(b), "\n")
}

// postJSON encodes args as dockerd does and returns the status and answer.
func (p *testPlugin) postJSON(path string, args any) (int, string) {
	p.t.Helper()
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(args); err != nil {
		p.t.Fatal(err)
	}
	return p.postRaw(path, buf.String())
}

// mustInit initialises the plugin with home, failing the test otherwise.
func (p *testPlugin) mustInit(home string) {
	p.t.Helper()
	status, body := p.postJSON(PathInit, InitRequest{Home: home})
	if status != http.StatusOK || body != `{}` {
		p.t.Fatalf("Init: got %d %s, want 200 {}", status, body)
	}
}

// errorEntries returns the log entries at level Error.
func (p *testPlugin) errorEntries() []*logrus.Entry {
	var errs []*logrus.Entry
	for _, e := range p.logs.AllEntries() {
		if e.Level == logrus.ErrorLevel {
			errs = append(errs, e)
		}
	}
	return errs
}

// The methods below reproduce what dockerd's plugin client (pkg/plugins
// in moby) does with an answer, without its retries: a status other than
// 200 is an error that carries Err if the body has one, and a 200 body is
// decoded or handed over as a stream.

// dockerCall is Client.Call.
func (p *testPlugin) dockerCall(method string, args, ret any) error {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(args); err != nil {
		return err
	}
	body, err := p.dockerRequest(method, &buf)
	if err != nil {
		return err
	}
	defer body.Close()
	return json.NewDecoder(body).Decode(ret)
}

// dockerStream is Client.Stream.
func (p *testPlugin) dockerStream(method string, args any) (io.ReadCloser, error) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(args); err != nil {
		return nil, err
	}
	return p.dockerRequest(method, &buf)
}

// dockerSendFile is Client.SendFile.
func (p *testPlugin) dockerSendFile(method string, data io.Reader, ret any) error {
	body, err := p.dockerRequest(method, data)
	if err != nil {
		return err
	}
	defer body.Close()
	return json.NewDecoder(body).Decode(ret)
}

func (p *testPlugin) dockerRequest(method string, data io.Reader) (io.ReadCloser, error) {
	req, err := http.NewRequest(http.MethodPost, "http://plugin/"+method, data)
	if err != nil {
		return nil, err
	}
	req.Header.Add("Accept", pluginMimeType)
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusOK {
		return resp.Body, nil
	}

	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("plugin %s answered %d: %w", method, resp.StatusCode, err)
	}
	var remote struct{ Err string }
	if json.Unmarshal(b, &remote) == nil && remote.Err != "" {
		return nil, fmt.Errorf("plugin %s answered %d: %s", method, resp.StatusCode, remote.Err)
	}
	return nil, fmt.Errorf("plugin %s answered %d: %s", method, resp.StatusCode, b)
}
