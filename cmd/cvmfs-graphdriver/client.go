package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/sys/user"
)

// passwdFile is where findClient looks the client's user up.
const passwdFile = "/etc/passwd"

// findClient finds what the internal mount method needs: the client
// program, looked up in the directories of pathList unless its name holds
// a slash, and the ids of the user it runs as. When something is missing
// it fails with one sentence that names it and what to do, since the
// plugin then refuses to start.
func findClient(program, userName, pathList string) (clientConfig, error) {
	binary, err := findProgram(program, pathList)
	if err != nil {
		return clientConfig{}, fmt.Errorf("mount method %q needs the CernVM-FS client: %w; "+
			"install cvmfs (the managed plugin: build it with make plugin-dir CVMFS_CLIENT=/usr/bin/cvmfs2) "+
			"or use mount method %s", mountInternal, err, mountExternal)
	}

	users, err := user.ParsePasswdFileFilter(passwdFile, func(u user.User) bool { return u.Name == userName })
	if err != nil {
		return clientConfig{}, fmt.Errorf("mount method %q needs the user the CernVM-FS client runs as: "+
			"failed to read %s: %w", mountInternal, passwdFile, err)
	}
	if len(users) == 0 {
		return clientConfig{}, fmt.Errorf("mount method %q needs the user the CernVM-FS client runs as: "+
			"no user %q in %s; install cvmfs, which creates it, or name another with --cvmfs-user",
			mountInternal, userName, passwdFile)
	}
	return clientConfig{binary: binary, uid: users[0].Uid, gid: users[0].Gid}, nil
}

// findProgram returns the absolute path of the executable file program
// names: the name itself if it holds a slash, else the first match in the
// directories of pathList. Empty entries in pathList, which a shell reads
// as the working directory, are skipped.
func findProgram(program, pathList string) (string, error) {
	if strings.Contains(program, "/") {
		abs, err := filepath.Abs(program)
		if err != nil {
			return "", fmt.Errorf("failed to resolve %s: %w", program, err)
		}
		if err := checkExecutable(abs); err != nil {
			return "", err
		}
		return abs, nil
	}
	for _, dir := range filepath.SplitList(pathList) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, program)
		if checkExecutable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in PATH", program)
}

// checkExecutable fails unless path is a regular file that someone may
// execute.
func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s does not exist", path)
	}
	if err != nil {
		return fmt.Errorf("failed to inspect %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", path)
	}
	return nil
}
