package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Save streams the image ref out of the daemon in the format of
// `docker save`. The caller reads the archive and closes it; an image the
// daemon does not have yields an error matching ErrNotFound.
func (c *Client) Save(ctx context.Context, ref string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		c.endpoint("/images/get", url.Values{"names": {ref}}), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.dialError(err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, responseError("save "+ref, resp)
	}
	return resp.Body, nil
}

// Load sends an archive in the format of `docker save` to the daemon, as
// `docker load` does, and returns the daemon's report, one line per image
// ("Loaded image: ..."). It fails when the daemon reports an error in its
// progress stream as well as when it refuses the request.
func (c *Client) Load(ctx context.Context, archive io.Reader) ([]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		c.endpoint("/images/load", url.Values{"quiet": {"1"}}), archive)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-tar")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.dialError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return nil, responseError("load", resp)
	}
	return readLoadStream(resp.Body)
}

// loadMessage is one line of the JSON stream /images/load answers with.
type loadMessage struct {
	Stream      string `json:"stream"`
	Error       string `json:"error"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
}

// readLoadStream collects the "stream" lines of a load response and turns
// an "error" line into an error.
func readLoadStream(r io.Reader) ([]string, error) {
	var lines []string
	dec := json.NewDecoder(bufio.NewReader(r))
	for {
		var m loadMessage
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return lines, nil
		}
		if err != nil {
			return lines, fmt.Errorf("failed to read the daemon's answer to load: %w", err)
		}
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			return lines, &APIError{Op: "load", StatusCode: http.StatusOK, Message: m.ErrorDetail.Message}
		}
		if m.Error != "" {
			return lines, &APIError{Op: "load", StatusCode: http.StatusOK, Message: m.Error}
		}
		if s := strings.TrimSpace(m.Stream); s != "" {
			lines = append(lines, s)
		}
	}
}

// dialError says which daemon could not be reached.
func (c *Client) dialError(err error) error {
	if c.isUnix() {
		return fmt.Errorf("failed to reach the docker daemon at %s (is it running? set %s to use another): %w", c.host, HostEnv, err)
	}
	return fmt.Errorf("failed to reach the docker daemon at %s: %w", c.host, err)
}
