package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/graphdriver"
)

// fakeKernel serves the file systems it lists and records what it was
// asked for.
type fakeKernel struct {
	has   []string
	asked []string
}

func (k *fakeKernel) Supports(fs string) bool {
	k.asked = append(k.asked, fs)
	return slices.Contains(k.has, fs)
}

// fakeBackend is a driver that only knows its name.
type fakeBackend struct {
	graphdriver.Driver
	name    string
	cleaned bool
}

func (b *fakeBackend) String() string { return b.name }
func (b *fakeBackend) Cleanup() error { b.cleaned = true; return nil }

// fakeBackends returns constructors for names that create the home, as
// every backend does, and fail for a home holding a file named "refuse".
func fakeBackends(names ...string) map[string]newBackend {
	m := make(map[string]newBackend)
	for _, name := range names {
		m[name] = func(opts graphdriver.InitOptions, _ string, _ repositories) (graphdriver.Driver, error) {
			if _, err := os.Stat(filepath.Join(opts.Home, "refuse")); err == nil {
				return nil, errors.New("backend refuses this home")
			}
			if err := os.MkdirAll(opts.Home, 0o711); err != nil {
				return nil, err
			}
			return &fakeBackend{name: name}, nil
		}
	}
	return m
}

func TestSelectorNewDriver(t *testing.T) {
	tests := []struct {
		name      string
		requested string
		backends  []string
		kernel    []string
		// home prepares the home; nil leaves it absent.
		home       func(t *testing.T, home string)
		want       string
		wantErr    string
		wantRecord string // "" means no record file is expected
		wantAsked  []string
	}{
		{
			name:      "auto picks overlay2 when the kernel has overlay",
			requested: autoBackend, backends: []string{"overlay2", "aufs"}, kernel: []string{"overlay", "aufs"},
			want: "overlay2", wantRecord: "overlay2", wantAsked: []string{"overlay"},
		},
		{
			name:      "auto falls back to aufs",
			requested: autoBackend, backends: []string{"overlay2", "aufs"}, kernel: []string{"aufs"},
			want: "aufs", wantRecord: "aufs", wantAsked: []string{"overlay", "aufs"},
		},
		{
			name:      "auto with neither file system",
			requested: autoBackend, backends: []string{"overlay2", "aufs"},
			wantErr: "no backend can run here: the kernel supports none of overlay (for overlay2), aufs (for aufs), even after trying to load them",
		},
		{
			name:      "auto skips a backend this build lacks",
			requested: autoBackend, backends: []string{"overlay2"}, kernel: []string{"aufs"},
			wantErr:   "no backend can run here: the kernel supports none of overlay (for overlay2), even after trying to load them",
			wantAsked: []string{"overlay"},
		},
		{
			name:      "auto keeps the recorded backend",
			requested: autoBackend, backends: []string{"overlay2", "aufs"}, kernel: []string{"overlay", "aufs"},
			home: record("aufs"),
			want: "aufs", wantRecord: "aufs", wantAsked: []string{"aufs"},
		},
		{
			name:      "auto recognises a home from before the record",
			requested: autoBackend, backends: []string{"overlay2", "aufs"}, kernel: []string{"aufs"},
			home: func(t *testing.T, home string) { mkdir(t, filepath.Join(home, "l")) },
			want: "overlay2", wantRecord: "overlay2", wantAsked: []string{"overlay"},
		},
		{
			name:      "requested backend on a fresh home",
			requested: "overlay2", backends: []string{"overlay2", "aufs"},
			want: "overlay2", wantRecord: "overlay2", wantAsked: []string{"overlay"},
		},
		{
			name:      "requested backend on its own home",
			requested: "aufs", backends: []string{"overlay2", "aufs"},
			home: record("aufs"),
			want: "aufs", wantRecord: "aufs", wantAsked: []string{"aufs"},
		},
		{
			name:      "requested backend on another backend's home",
			requested: "overlay2", backends: []string{"overlay2", "aufs"}, kernel: []string{"overlay"},
			home:       record("aufs"),
			wantErr:    "holds layers of the aufs backend and this plugin is set to overlay2: set BACKEND=aufs (or auto)",
			wantRecord: "aufs",
		},
		{
			name:      "recorded backend missing from this build",
			requested: autoBackend, backends: []string{"overlay2"}, kernel: []string{"overlay"},
			home:       record("devicemapper"),
			wantErr:    "was laid out by the devicemapper backend, which this build of cvmfs-graphdriver lacks",
			wantRecord: "devicemapper",
		},
		{
			name:      "malformed record",
			requested: autoBackend, backends: []string{"overlay2"}, kernel: []string{"overlay"},
			home:       record(""),
			wantErr:    "is malformed",
			wantRecord: "",
		},
		{
			name:      "backend that fails leaves no record",
			requested: autoBackend, backends: []string{"overlay2"}, kernel: []string{"overlay"},
			home: func(t *testing.T, home string) {
				mkdir(t, home)
				if err := os.WriteFile(filepath.Join(home, "refuse"), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "backend refuses this home",
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := filepath.Join(t.TempDir(), "home")
			if tt.home != nil {
				tt.home(t, home)
			}
			kernel := &fakeKernel{has: tt.kernel}
			log := logrus.New()
			log.SetOutput(io.Discard)
			sel := &selector{requested: tt.requested, backends: fakeBackends(tt.backends...),
				kernel: kernel, log: logrus.NewEntry(log)}

			d, err := sel.newDriver(graphdriver.InitOptions{Home: home}, "/cvmfs")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if got := d.String(); got != tt.want {
					t.Errorf("got backend %s, want %s", got, tt.want)
				}
			}

			data, err := os.ReadFile(filepath.Join(home, backendRecordName))
			got := strings.TrimSpace(string(data))
			switch {
			case tt.wantRecord == "" && tt.home == nil && err == nil:
				t.Errorf("record %q written for a failed selection", got)
			case tt.wantRecord != "" && got != tt.wantRecord:
				t.Errorf("record holds %q (%v), want %q", got, err, tt.wantRecord)
			}
			if tt.wantAsked != nil && !slices.Equal(kernel.asked, tt.wantAsked) {
				t.Errorf("kernel asked for %v, want %v", kernel.asked, tt.wantAsked)
			}
		})
	}
}

// record returns a home preparation that writes a backend record.
func record(name string) func(t *testing.T, home string) {
	return func(t *testing.T, home string) {
		mkdir(t, home)
		if err := os.WriteFile(filepath.Join(home, backendRecordName), []byte(name+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestCheckBackendName(t *testing.T) {
	for _, name := range append([]string{autoBackend}, backendNames()...) {
		if err := checkBackendName(name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	err := checkBackendName("zfs")
	want := `unknown backend "zfs": valid backends are ` + strings.Join(validBackends(), ", ")
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
}
