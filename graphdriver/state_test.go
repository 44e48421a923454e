package graphdriver

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStateFileFormat(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s := stateFile{dir: dir}

	opts := InitOptions{
		Home:    "/var/lib/docker/cvmfs",
		Opts:    []string{"overlay2.size=10G"},
		UIDMaps: []IDMap{{ContainerID: 0, HostID: 100000, Size: 65536}},
	}
	if err := s.save(opts); err != nil {
		t.Fatal(err)
	}

	data, err := os.ReadFile(filepath.Join(dir, StateFileName))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"Version":1,"Home":"/var/lib/docker/cvmfs","Opts":["overlay2.size=10G"],` +
		`"UIDMaps":[{"ContainerID":0,"HostID":100000,"Size":65536}],"GIDMaps":null}` + "\n"
	if string(data) != want {
		t.Errorf("state file holds\n%s\nwant\n%s", data, want)
	}

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("state directory holds %d files, want only %s", len(entries), StateFileName)
	}

	got, err := s.load()
	if err != nil {
		t.Fatal(err)
	}
	if !sameInit(got, opts) {
		t.Errorf("loaded %+v, want %+v", got, opts)
	}
}

func TestStateFileLoadErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string
		wantErr string
	}{
		{"not JSON", `{"Version":`, "failed to decode saved Init"},
		{"other version", `{"Version":2,"Home":"/h"}`, "has version 2, this plugin reads version 1"},
		{"no home", `{"Version":1}`, "has no Home"},
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, StateFileName)
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}

			_, err := stateFile{dir: dir}.load()
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got %v, want an error with %q", err, tc.wantErr)
			}
			if errors.Is(err, ErrNotInitialized) {
				t.Errorf("a damaged state file reads as never initialised: %v", err)
			}
		})
	}
}

func TestStateFileSaveFails(t *testing.T) {
	// A state directory that is a file cannot be created.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	err := stateFile{dir: file}.save(InitOptions{Home: "/h"})
	if err == nil || !strings.Contains(err.Error(), "failed to create state directory") {
		t.Errorf("got %v, want a failure to create the state directory", err)
	}
}
