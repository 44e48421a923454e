package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
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
		cvmfs2:      defaultCVMFS2,
		cvmfsUser:   defaultCVMFSUser,
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
				backend: "overlay2", logLevel: logrus.DebugLevel, mountMethod: mountExternal, commitMode: commitLocal,
				cvmfs2: defaultCVMFS2, cvmfsUser: defaultCVMFSUser},
		},
		{
			name: "environment",
			env: map[string]string{"SOCKET": "/run/e.sock", "CVMFS_ROOT": "/e/cvmfs",
				"STATE_DIR": "/e/state", "BACKEND": "overlay2", "LOG_LEVEL": "warn"},
			want: config{socket: "/run/e.sock", cvmfsRoot: "/e/cvmfs", stateDir: "/e/state",
				backend: "overlay2", logLevel: logrus.WarnLevel, mountMethod: mountExternal, commitMode: commitLocal,
				cvmfs2: defaultCVMFS2, cvmfsUser: defaultCVMFSUser},
		},
		{
			name: "flag wins over environment",
			args: []string{"--log-level", "error", "--state-dir", "/f/state"},
			env:  map[string]string{"LOG_LEVEL": "debug", "STATE_DIR": "/e/state"},
			want: config{socket: defaultSocket, cvmfsRoot: defaultCVMFSRoot, stateDir: "/f/state",
				backend: defaultBackend, logLevel: logrus.ErrorLevel, mountMethod: mountExternal, commitMode: commitLocal,
				cvmfs2: defaultCVMFS2, cvmfsUser: defaultCVMFSUser},
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
			name:    "internal mount method without a client in PATH",
			args:    []string{"--mount-method", "internal"},
			env:     map[string]string{"PATH": "/nonexistent/bin"},
			wantErr: `mount method "internal" needs the CernVM-FS client: cvmfs2 not found in PATH; install cvmfs (the managed plugin: build it with make plugin-dir CVMFS_CLIENT=/usr/bin/cvmfs2) or use mount method external`,
		},
		{
			name:    "internal mount method without PATH",
			env:     map[string]string{"MOUNT_METHOD": "internal"},
			wantErr: `mount method "internal" needs the CernVM-FS client: cvmfs2 not found in PATH; install cvmfs (the managed plugin: build it with make plugin-dir CVMFS_CLIENT=/usr/bin/cvmfs2) or use mount method external`,
		},
		{
			name:    "internal mount method with a missing client",
			env:     map[string]string{"MOUNT_METHOD": "internal", "CVMFS2_BINARY": "/nonexistent/cvmfs2"},
			wantErr: `mount method "internal" needs the CernVM-FS client: /nonexistent/cvmfs2 does not exist; install cvmfs (the managed plugin: build it with make plugin-dir CVMFS_CLIENT=/usr/bin/cvmfs2) or use mount method external`,
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
				backend: "zfs", mountMethod: mountExternal, commitMode: commitLocal,
				cvmfs2: defaultCVMFS2, cvmfsUser: defaultCVMFSUser, version: true},
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

// TestParseConfigInternal takes the internal mount method with a client in
// PATH or named by path, and the user it runs as from /etc/passwd, where
// root always is.
func TestParseConfigInternal(t *testing.T) {
	bin := t.TempDir()
	client := filepath.Join(bin, "cvmfs2")
	if err := os.WriteFile(client, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	notExec := filepath.Join(bin, "cvmfs2-data")
	if err := os.WriteFile(notExec, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	pathList := "/nonexistent/bin" + string(os.PathListSeparator) + bin

	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		wantClient clientConfig
		wantErr    string
	}{
		{
			name:       "client in PATH",
			args:       []string{"--mount-method", "internal", "--cvmfs-user", "root"},
			env:        map[string]string{"PATH": pathList},
			wantClient: clientConfig{binary: client, uid: 0, gid: 0},
		},
		{
			name:       "client by path from the environment",
			env:        map[string]string{"MOUNT_METHOD": "internal", "CVMFS2_BINARY": client, "CVMFS_USER": "root"},
			wantClient: clientConfig{binary: client, uid: 0, gid: 0},
		},
		{
			name:    "client that is not executable",
			args:    []string{"--mount-method", "internal", "--cvmfs2", notExec, "--cvmfs-user", "root"},
			wantErr: `mount method "internal" needs the CernVM-FS client: ` + notExec + ` is not an executable file; install cvmfs (the managed plugin: build it with make plugin-dir CVMFS_CLIENT=/usr/bin/cvmfs2) or use mount method external`,
		},
		{
			name: "no such user",
			args: []string{"--mount-method", "internal", "--cvmfs-user", "no-such-user-here"},
			env:  map[string]string{"PATH": pathList},
			wantErr: `mount method "internal" needs the user the CernVM-FS client runs as: no user "no-such-user-here" in /etc/passwd; ` +
				`install cvmfs, which creates it, or name another with --cvmfs-user`,
		},
		{
			name:       "external ignores the client",
			args:       []string{"--cvmfs2", "/nonexistent/cvmfs2", "--cvmfs-user", "no-such-user-here"},
			wantClient: clientConfig{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			getenv := func(name string) string { return tc.env[name] }
			cfg, err := parseConfig(tc.args, getenv, io.Discard)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("got error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if cfg.client != tc.wantClient {
				t.Errorf("found client %+v, want %+v", cfg.client, tc.wantClient)
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
	flags := []string{"socket", "cvmfs-root", "state-dir", "backend", "mount-method", "cvmfs2", "cvmfs-user", "commit-mode",
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
