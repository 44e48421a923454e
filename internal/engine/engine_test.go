package engine

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// fakeDaemon serves handler on a unix socket and returns a client of it.
func fakeDaemon(t *testing.T, handler http.Handler) *Client {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	c, err := New("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSave(t *testing.T) {
	c := fakeDaemon(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/"+apiVersion+"/images/get" {
			http.NotFound(w, r)
			return
		}
		switch r.URL.Query().Get("names") {
		case "e2e/img:v1":
			io.WriteString(w, "archive bytes")
		default:
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"message":"reference does not exist"}`)
		}
	}))

	rc, err := c.Save(context.Background(), "e2e/img:v1")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(rc)
	rc.Close()
	if string(data) != "archive bytes" {
		t.Errorf("Save streamed %q", data)
	}

	_, err = c.Save(context.Background(), "e2e/none")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "reference does not exist") {
		t.Errorf("Save of a missing image = %v, want ErrNotFound with the daemon's message", err)
	}
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     string
		wantLine string
		wantErr  string
	}{
		{"loaded", 200, `{"stream":"Loaded image: e2e/thin:latest\n"}`, "Loaded image: e2e/thin:latest", ""},
		{"error in stream", 200, `{"errorDetail":{"message":"invalid diffID"},"error":"invalid diffID"}`, "", "invalid diffID"},
		{"refused", 500, `{"message":"no space left on device"}`, "", "no space left on device"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fakeDaemon(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			lines, err := c.Load(context.Background(), strings.NewReader("tar"))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load = %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(lines) != 1 || lines[0] != tt.wantLine {
				t.Fatalf("Load = %q, %v", lines, err)
			}
		})
	}
}

func TestNew(t *testing.T) {
	for _, host := range []string{"unix:///var/run/docker.sock", "tcp://127.0.0.1:2375"} {
		if _, err := New(host); err != nil {
			t.Errorf("New(%q): %v", host, err)
		}
	}
	for _, host := range []string{"ssh://host", "unix://", "tcp://", "::"} {
		if _, err := New(host); err == nil {
			t.Errorf("New(%q) succeeded", host)
		}
	}
}
