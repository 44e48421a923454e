package engine

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// DefaultHost is the daemon used when DOCKER_HOST is unset or empty.
const DefaultHost = "unix:///var/run/docker.sock"

// HostEnv is the environment variable that names the daemon.
const HostEnv = "DOCKER_HOST"

// apiVersion is the Engine API version requests are made with. 1.40 is
// Docker 19.03; every daemon that supports graphdriver plugins and is still
// in use answers it, and the two calls made here have not changed since.
const apiVersion = "v1.40"

// Client talks to one Docker daemon.
type Client struct {
	host    string
	baseURL string
	http    *http.Client
}

// FromEnv returns a client of the daemon DOCKER_HOST names.
func FromEnv() (*Client, error) {
	host := os.Getenv(HostEnv)
	if host == "" {
		host = DefaultHost
	}
	return New(host)
}

// New returns a client of the daemon at host, unix:///path or
// tcp://host:port.
func New(host string) (*Client, error) {
	u, err := url.Parse(host)
	if err != nil {
		return nil, fmt.Errorf("failed to parse Docker host %q: %w", host, err)
	}

	transport := &http.Transport{}
	c := &Client{host: host, http: &http.Client{Transport: transport}}
	switch u.Scheme {
	case "unix":
		sock := u.Path
		if sock == "" {
			return nil, fmt.Errorf("docker host %q names no socket", host)
		}
		transport.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}
		// The host part of the URL is never dialled.
		c.baseURL = "http://docker/" + apiVersion
	case "tcp", "http":
		if u.Host == "" {
			return nil, fmt.Errorf("docker host %q names no address", host)
		}
		c.baseURL = "http://" + u.Host + "/" + apiVersion
	default:
		return nil, fmt.Errorf("docker host %q: scheme %q is not supported (use unix:// or tcp://)", host, u.Scheme)
	}
	return c, nil
}

// Host returns the daemon address the client was made for.
func (c *Client) Host() string { return c.host }

// endpoint returns the URL of an API path such as "/images/get".
func (c *Client) endpoint(path string, query url.Values) string {
	s := c.baseURL + path
	if len(query) > 0 {
		s += "?" + query.Encode()
	}
	return s
}

// isUnix reports whether the host is a unix socket, for messages.
func (c *Client) isUnix() bool { return strings.HasPrefix(c.host, "unix://") }
