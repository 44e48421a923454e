package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/test/dockertest"
)

// registryBinary is Debian's docker-registry (distribution 2.8).
const registryBinary = "/usr/bin/docker-registry"

// registry is a private registry on loopback, without authentication: the
// benchmark measures transfer, not log-in.
type registry struct {
	addr string
	proc *dockertest.Process
}

func startRegistry(dir string) (*registry, error) {
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	config := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s
`, filepath.Join(dir, "data"), addr)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		return nil, err
	}
	p, err := dockertest.StartProcess("registry", filepath.Join(dir, "registry.log"), []string{registryBinary, "serve", cfgPath}, os.Environ())
	if err != nil {
		return nil, err
	}
	r := &registry{addr: addr, proc: p}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r, nil
			}
		}
		if p.Exited() || time.Now().After(deadline) {
			stopErr := r.stop()
			return nil, fmt.Errorf("registry did not start on %s (see %s): %v", addr, p.LogPath(), stopErr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *registry) stop() error { return r.proc.Stop(10 * time.Second) }
