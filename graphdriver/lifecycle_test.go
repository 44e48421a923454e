package graphdriver

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// TestRestartWithoutInit simulates a plugin that crashed and was started
// again by dockerd, which sends no second Init: a new handler on the same
// state directory rebuilds the driver from the saved Init, once, even when
// the first calls arrive together.
func TestRestartWithoutInit(t *testing.T) {
	stateDir := t.TempDir()
	init := InitRequest{
		Home:    "/var/lib/docker/cvmfs",
		Opts:    []string{"overlay2.size=10G"},
		UIDMaps: []IDMap{{ContainerID: 0, HostID: 100000, Size: 65536}},
		GIDMaps: []IDMap{{ContainerID: 0, HostID: 100000, Size: 65536}},
	}

	before := startPlugin(t, stateDir, &fakeFactory{})
	if status, body := before.postJSON(PathInit, init); status != http.StatusOK {
		t.Fatalf("Init: got %d %s", status, body)
	}

	f := &fakeFactory{}
	after := startPlugin(t, stateDir, f)

	const calls = 8
	var wg sync.WaitGroup
	answers := make([]string, calls)
	for i := range calls {
		wg.Go(func() {
			_, answers[i] = after.postJSON(PathGet, Request{ID: "l1"})
		})
	}
	wg.Wait()

	for i, body := range answers {
		if body != `{"Dir":"/fake/l1/merged"}` {
			t.Errorf("Get %d after restart: got %s", i, body)
		}
	}
	built := f.drivers()
	if len(built) != 1 {
		t.Fatalf("built %d drivers after restart, want 1", len(built))
	}
	want := InitOptions{Home: init.Home, Opts: init.Opts, UIDMaps: init.UIDMaps, GIDMaps: init.GIDMaps}
	if !sameInit(built[0].opts, want) {
		t.Errorf("rebuilt with %+v, want %+v", built[0].opts, want)
	}
}

func TestCallWithoutInit(t *testing.T) {
	stateDir := t.TempDir()
	f := &fakeFactory{}
	p := startPlugin(t, stateDir, f)

	t.Run("error", func(t *testing.T) {
		_, err := p.handler.driver()
		if !errors.Is(err, ErrNotInitialized) {
			t.Errorf("got %v, want ErrNotInitialized", err)
		}
	})

	tests := []struct {
		name       string
		path       string
		wantStatus int
	}{
		{"get", PathGet, http.StatusInternalServerError},
		{"status", PathStatus, http.StatusInternalServerError},
		{"diff", PathDiff, http.StatusInternalServerError},
		{"apply diff", PathApplyDiff + "?id=l1&parent=", http.StatusInternalServerError},
		// dockerd takes any failed Exists for "no".
		{"exists", PathExists, http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := p.postJSON(tc.path, Request{ID: "l1"})

			var resp Response
			if err := json.Unmarshal([]byte(body), &resp); err != nil {
				t.Fatalf("answer %q: %v", body, err)
			}
			if status != tc.wantStatus {
				t.Errorf("got status %d, want %d", status, tc.wantStatus)
			}
			wantErr := "the graphdriver plugin was never initialised: dockerd has not called GraphDriver.Init " +
				"since the plugin started, and " + filepath.Join(stateDir, StateFileName) + " does not exist"
			if resp.Err != wantErr {
				t.Errorf("got Err %q\nwant %q", resp.Err, wantErr)
			}
		})
	}

	if built := f.drivers(); len(built) != 0 {
		t.Errorf("built %d drivers without Init", len(built))
	}
}

func TestInitAgain(t *testing.T) {
	t.Run("same home keeps the driver", func(t *testing.T) {
		f := &fakeFactory{}
		p := startPlugin(t, t.TempDir(), f)
		home := t.TempDir()

		p.mustInit(home)
		p.mustInit(home)

		built := f.drivers()
		if len(built) != 1 {
			t.Fatalf("built %d drivers, want 1", len(built))
		}
		if calls := built[0].Calls(); len(calls) != 0 {
			t.Errorf("kept driver got calls %q", calls)
		}
	})

	t.Run("other home replaces the driver", func(t *testing.T) {
		stateDir := t.TempDir()
		f := &fakeFactory{}
		p := startPlugin(t, stateDir, f)

		p.mustInit("/data/one")
		p.mustInit("/data/two")

		built := f.drivers()
		if len(built) != 2 {
			t.Fatalf("built %d drivers, want 2", len(built))
		}
		if calls := built[0].Calls(); !slices.Equal(calls, []string{"Cleanup"}) {
			t.Errorf("replaced driver got calls %q, want [Cleanup]", calls)
		}
		if home := savedHome(t, stateDir); home != "/data/two" {
			t.Errorf("saved home %q, want /data/two", home)
		}

		p.postJSON(PathGet, Request{ID: "l1"})
		if calls := built[1].Calls(); !slices.Equal(calls, []string{"Get l1 label="}) {
			t.Errorf("new driver got calls %q, want [Get l1 label=]", calls)
		}
	})

	t.Run("other options replace the driver", func(t *testing.T) {
		f := &fakeFactory{}
		p := startPlugin(t, t.TempDir(), f)

		p.mustInit("/data/one")
		p.postJSON(PathInit, InitRequest{Home: "/data/one", Opts: []string{"size=1G"}})

		if built := f.drivers(); len(built) != 2 {
			t.Fatalf("built %d drivers, want 2", len(built))
		}
	})
}

// TestInitFails checks that a failed Init leaves neither a driver nor a
// saved Init that a later call could rebuild one from.
func TestInitFails(t *testing.T) {
	stateDir := t.TempDir()
	f := &fakeFactory{}
	p := startPlugin(t, stateDir, f)
	p.mustInit("/data/one")

	f.err = errors.New("backing filesystem is not supported")
	status, body := p.postJSON(PathInit, InitRequest{Home: "/data/two"})
	want := `{"Err":"failed to initialise driver in /data/two: backing filesystem is not supported"}`
	if status != http.StatusInternalServerError || body != want {
		t.Errorf("got %d %s\nwant 500 %s", status, body, want)
	}

	if _, err := os.Stat(filepath.Join(stateDir, StateFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file after failed Init: %v, want it removed", err)
	}
	f.err = nil
	if _, err := p.handler.driver(); !errors.Is(err, ErrNotInitialized) {
		t.Errorf("driver after failed Init: %v, want ErrNotInitialized", err)
	}
}

func TestInitBadRequest(t *testing.T) {
	tests := []struct {
		name     string
		req      string
		wantBody string
	}{
		{
			name:     "not JSON",
			req:      `{"Home": 7}`,
			wantBody: "failed to decode request body as JSON",
		},
		{
			name:     "no home",
			req:      `{"Opts":null}`,
			wantBody: `driver home \"\" is not an absolute path`,
		},
		{
			name:     "relative home",
			req:      `{"Home":"docker/cvmfs"}`,
			wantBody: `driver home \"docker/cvmfs\" is not an absolute path`,
		},
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeFactory{}
			p := startPlugin(t, t.TempDir(), f)

			status, body := p.postRaw(PathInit, tc.req)
			if status != http.StatusBadRequest || !strings.Contains(body, tc.wantBody) {
				t.Errorf("got %d %s, want 400 and %s", status, body, tc.wantBody)
			}
			if built := f.drivers(); len(built) != 0 {
				t.Errorf("built %d drivers for a bad Init", len(built))
			}
		})
	}
}

func TestCleanup(t *testing.T) {
	t.Run("failure is answered 200 with Err and logged", func(t *testing.T) {
		f := &fakeFactory{driverErr: errors.New("device or resource busy")}
		p := startPlugin(t, t.TempDir(), f)
		p.mustInit("/data/one")

		status, body := p.postJSON(PathCleanup, Request{})
		want := `{"Err":"failed to clean up driver in /data/one: device or resource busy"}`
		if status != http.StatusOK || body != want {
			t.Errorf("got %d %s\nwant 200 %s", status, body, want)
		}
		errs := p.errorEntries()
		if len(errs) != 1 || errs[0].Data["method"] != "GraphDriver.Cleanup" {
			t.Errorf("got error log entries %v, want one for GraphDriver.Cleanup", errs)
		}
	})

	t.Run("drops the driver and keeps the saved Init", func(t *testing.T) {
		f := &fakeFactory{}
		p := startPlugin(t, t.TempDir(), f)
		p.mustInit("/data/one")

		if status, body := p.postJSON(PathCleanup, Request{}); status != http.StatusOK || body != `{}` {
			t.Fatalf("Cleanup: got %d %s", status, body)
		}
		if status, body := p.postJSON(PathGet, Request{ID: "l1"}); status != http.StatusOK {
			t.Fatalf("Get after Cleanup: got %d %s", status, body)
		}

		built := f.drivers()
		if len(built) != 2 {
			t.Fatalf("built %d drivers, want 2", len(built))
		}
		if calls := built[0].Calls(); !slices.Equal(calls, []string{"Cleanup"}) {
			t.Errorf("first driver got calls %q, want [Cleanup]", calls)
		}
	})

	t.Run("without a driver does nothing", func(t *testing.T) {
		stateDir := t.TempDir()
		startPlugin(t, stateDir, &fakeFactory{}).mustInit("/data/one")

		f := &fakeFactory{}
		p := startPlugin(t, stateDir, f)
		if status, body := p.postJSON(PathCleanup, Request{}); status != http.StatusOK || body != `{}` {
			t.Errorf("got %d %s, want 200 {}", status, body)
		}
		if built := f.drivers(); len(built) != 0 {
			t.Errorf("built %d drivers to clean up, want none", len(built))
		}
	})
}

// savedHome returns the Home in the state file of stateDir.
func savedHome(t *testing.T, stateDir string) string {
	t.Helper()
	opts, err := stateFile{dir: stateDir}.load()
	if err != nil {
		t.Fatal(err)
	}
	return opts.Home
}
