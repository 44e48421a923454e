package main

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
)

func TestParseConfig(t *testing.T) {
	defaults := config{
		socket:      defaultSocket,
		cvmfsRoot:   defaultCVMFSRoot,
		stateDir:    defaultStateDir,
		backend:     defaultBackend,
		logLevel:    logrus.InfoLevel,
		mountMethod: mountExternal,
		commitMode:  commitLocal,
	}

	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    config
		wantErr string
	}{
		{
			name: "defaults",
			want: defaults,
		},
		{
			name: "flags",
			args: []string{"--socket", "/run/x.sock", "--cvmfs-root=/mnt/cvmfs", "--state-dir", "/s",
				"--backend", "overlay2", "--log-level", "debug"},
			want: config{socket: "/run/x.sock", cvmfsRoot: "/mnt/cvmfs", stateDir: "/s",
				backend: "overlay2", logLevel: logrus.DebugLevel, mountMethod: mountExternal, commitMode: commitLocal},
		},
		{
			name: "environment",
			env: map[string]string{"SOCKET": "/run/e.sock", "CVMFS_ROOT": "/e/cvmfs",
				"STATE_DIR": "/e/state", "BACKEND": "overlay2", "LOG_LEVEL": "warn"},
			want: config{socket: "/run/e.sock", cvmfsRoot: "/e/cvmfs", stateDir: "/e/state",
				backend: "overlay2", logLevel: logrus.WarnLevel, mountMethod: mountExternal, commitMode: commitLocal},
		},
		{
			name: "flag wins over environment",
			args: []string{"--log-level", "error", "--state-dir", "/f/state"},
			env:  map[string]string{"LOG_LEVEL": "debug", "STATE_DIR": "/e/state"},
			want: config{socket: defaultSocket, cvmfsRoot: defaultCVMFSRoot, stateDir: "/f/state",
				backend: defaultBackend, logLevel: logrus.ErrorLevel, mountMethod: mountExternal, commitMode: commitLocal},
		},
		{
			name:    "unknown backend",
			args:    []string{"--backend", "devicemapper"},
			wantErr: `unknown backend "devicemapper": valid backends are ` + strings.Join(validBackends(), ", "),
		},
		{
			name:    "unknown backend from environment",
			env:     map[string]string{"BACKEND": "zfs"},
			wantErr: `unknown backend "zfs": valid backends are ` + strings.Join(validBackends(), ", "),
		},
		{
			name: "auto backend",
			env:  map[string]string{"BACKEND": "auto"},
			want: defaults,
		},
		{
			name:    "unknown mount method",
			env:     map[string]string{"MOUNT_METHOD": "autofs"},
			wantErr: `unknown mount method "autofs": valid methods are external, internal`,
		},
		{
			name:    "internal mount method refused",
			args:    []string{"--mount-method", "internal"},
			wantErr: `mount method "internal" is not available in this version: the backends do not mount repositories themselves yet; mount CernVM-FS on the host and use "external"`,
		},
		{
			name:    "unknown commit mode",
			env:     map[string]string{"COMMIT_MODE": "push"},
			wantErr: `unknown commit mode "push": valid modes are local, publish`,
		},
		{
			name:    "publish commit mode refused",
			env:     map[string]string{"COMMIT_MODE": "publish"},
			wantErr: `commit mode "publish" is not implemented: layers committed on thin images can only be kept as ordinary local layers; use "local"`,
		},
		{
			name:    "unknown log level",
			args:    []string{"--log-level", "trace"},
			wantErr: `unknown log level "trace": valid levels are debug, info, warn, error`,
		},
		{
			name:    "unknown flag",
			args:    []string{"--home", "/x"},
			wantErr: "flag provided but not defined: -home (see --help)",
		},
		{
			name:    "argument",
			args:    []string{"serve"},
			wantErr: `unexpected argument "serve": cvmfs-graphdriver takes only flags`,
		},
		{
			name: "version skips validation",
			args: []string{"--version", "--backend", "zfs"},
			want: config{socket: defaultSocket, cvmfsRoot: defaultCVMFSRoot, stateDir: defaultStateDir,
				backend: "zfs", mountMethod: mountExternal, commitMode: commitLocal, version: true},
		},
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			getenv := func(name string) string { return tc.env[name] }
			var out bytes.Buffer

			got, err := parseConfig(tc.args, getenv, &out)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("got error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
			if out.Len() > 0 {
				t.Errorf("printed %q", out.String())
			}
		})
	}
}

func TestHelpListsEveryFlag(t *testing.T) {
	var out bytes.Buffer
	_, err := parseConfig([]string{"--help"}, func(string) string { return "" }, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("got %v, want flag.ErrHelp", err)
	}

	help := out.String()
	flags := []string{"socket", "cvmfs-root", "state-dir", "backend", "mount-method", "commit-mode",
		"log-level", "version", "hold-on-error", "help"}
	for _, name := range flags {
		lines := 0
		for line := range strings.Lines(help) {
			if strings.HasPrefix(strings.TrimSpace(line), "--"+name+" ") {
				lines++
			}
		}
		if lines != 1 {
			t.Errorf("help has %d lines for --%s, want 1:\n%s", lines, name, help)
		}
	}
}
