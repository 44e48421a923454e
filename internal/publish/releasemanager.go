package publish

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/repository"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/unpack"
)

// Defaults of a CernVM-FS release manager.
const (
	// ServerCommand is the release manager's command.
	ServerCommand = "cvmfs_server"
	// DefaultConfigDir holds one directory of configuration per repository.
	DefaultConfigDir = "/etc/cvmfs/repositories.d"
	// ServerConfName is a repository's server configuration file.
	ServerConfName = "server.conf"
	// IncludeXattrsKey must be true for extended attributes to be published.
	IncludeXattrsKey = "CVMFS_INCLUDE_XATTRS"
)

// ErrXattrsDisabled is matched, through errors.Is, by the error of a
// repository that would drop extended attributes.
var ErrXattrsDisabled = errors.New("extended attributes are not published")

// ReleaseManager publishes through cvmfs_server transactions.
type ReleaseManager struct {
	Repo repository.Repo
	// Command is the cvmfs_server to run; empty means ServerCommand,
	// looked up in PATH.
	Command string
	// ConfigDir is where server.conf is looked for; empty means
	// DefaultConfigDir.
	ConfigDir string
}

// Begin checks that the repository publishes extended attributes and opens
// a transaction. The repository's directory is then writable.
func (m ReleaseManager) Begin(ctx context.Context) (Change, error) {
	if err := m.checkXattrs(); err != nil {
		return nil, err
	}
	if err := m.run(ctx, "transaction", m.Repo.Name); err != nil {
		return nil, err
	}
	return rmChange{m: m}, nil
}

// WhiteoutFormat is AUFS; the package documentation says why.
func (ReleaseManager) WhiteoutFormat() unpack.WhiteoutFormat { return unpack.AUFS }

// Describe names the repository.
func (m ReleaseManager) Describe() string {
	return "CernVM-FS repository " + m.Repo.Name + " (cvmfs_server transaction)"
}

type rmChange struct{ m ReleaseManager }

// Commit publishes the transaction.
func (c rmChange) Commit(ctx context.Context) error {
	return c.m.run(ctx, "publish", c.m.Repo.Name)
}

// Abort drops the transaction without asking (-f). It runs even when ctx is
// cancelled, since a transaction left open blocks the repository.
func (c rmChange) Abort(ctx context.Context) error {
	return c.m.run(context.WithoutCancel(ctx), "abort", "-f", c.m.Repo.Name)
}

// serverConf returns the path of the repository's server.conf.
func (m ReleaseManager) serverConf() string {
	dir := m.ConfigDir
	if dir == "" {
		dir = DefaultConfigDir
	}
	return filepath.Join(dir, m.Repo.Name, ServerConfName)
}

// checkXattrs refuses a repository whose server.conf does not set
// CVMFS_INCLUDE_XATTRS=true.
func (m ReleaseManager) checkXattrs() error {
	p := m.serverConf()
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("repository %s has no %s: is this its release manager? %w", m.Repo.Name, p, err)
	}
	if err != nil {
		return fmt.Errorf("failed to read %s: %w", p, err)
	}
	value, found := confValue(data, IncludeXattrsKey)
	if !found || value != "true" {
		return fmt.Errorf("repository %s would drop the layers' extended attributes: set %s=true in %s: %w",
			m.Repo.Name, IncludeXattrsKey, p, ErrXattrsDisabled)
	}
	return nil
}

// confValue returns the last value given to key in a shell-style
// configuration file (KEY=value, optionally quoted, # comments).
func confValue(data []byte, key string) (value string, found bool) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) != key {
			continue
		}
		v, _, _ = strings.Cut(v, "#")
		value, found = strings.Trim(strings.TrimSpace(v), `"'`), true
	}
	return value, found
}

// run runs cvmfs_server with args and turns a failure into an error that
// shows the command and its output.
func (m ReleaseManager) run(ctx context.Context, args ...string) error {
	command := m.Command
	if command == "" {
		command = ServerCommand
	}
	cmd := exec.CommandContext(ctx, command, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s failed: %w: %s", command, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
