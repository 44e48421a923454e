package graphdriver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/docker/go-plugins-helpers/sdk"
	"github.com/sirupsen/logrus"
)

// call is one request being served. It carries the log fields of the call
// so that its outcome is logged once, when it is answered.
type call struct {
	log   *logrus.Entry
	start time.Time
}

// begin starts serving a request to path.
func (h *Handler) begin(path string) *call {
	return &call{
		log:   h.log.WithField("method", strings.TrimPrefix(path, "/")),
		start: time.Now(),
	}
}

// about adds the layer a call is for, and its parent, to the log fields.
func (c *call) about(id, parent string) {
	if id != "" {
		c.log = c.log.WithField("id", id)
	}
	if parent != "" {
		c.log = c.log.WithField("parent", parent)
	}
}

// reply answers a JSON call: resp with HTTP 200 on success, or only Err on
// failure, with HTTP 400 for a request that could not be read and errStatus
// for anything else. It then logs the outcome.
func (c *call) reply(w http.ResponseWriter, resp *Response, err error, errStatus int) {
	status := http.StatusOK
	if resp == nil {
		resp = &Response{}
	}
	if err != nil {
		status = errStatus
		var bad *badRequestError
		if errors.As(err, &bad) {
			status = http.StatusBadRequest
		}
		resp = &Response{Err: err.Error()}
	}

	werr := writeJSON(w, status, resp)
	c.finish(errors.Join(err, werr))
}

// finish logs the outcome of a call: a failure at level Error, a success
// as a Debug trace.
func (c *call) finish(err error) {
	log := c.log.WithField("duration", time.Since(c.start))
	if err != nil {
		log.WithError(err).Error("graphdriver call failed")
		return
	}
	log.Debug("graphdriver call served")
}

// writeJSON sends resp as the answer, with the given HTTP status.
func writeJSON(w http.ResponseWriter, status int, resp *Response) error {
	body, err := json.Marshal(resp)
	if err != nil {
		// Response holds only strings, integers, booleans and maps and
		// slices of those, which always encode; this is not expected.
		w.WriteHeader(http.StatusInternalServerError)
		return fmt.Errorf("failed to encode answer: %w", err)
	}

	w.Header().Set("Content-Type", sdk.DefaultContentTypeV1_1)
	w.WriteHeader(status)
	if _, err := w.Write(append(body, '\n')); err != nil {
		return fmt.Errorf("failed to send answer: %w", err)
	}
	return nil
}

// decodeJSON reads a JSON request body into v. An empty body is an empty
// request; anything that is not JSON is a bad request.
func decodeJSON(body io.Reader, v any) error {
	err := json.NewDecoder(body).Decode(v)
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		return badRequest("failed to decode request body as JSON: %w", err)
	}
	return nil
}

// requireLayerID rejects a request that names no layer.
func requireLayerID(id string) error {
	if id == "" {
		return badRequest("request names no layer: the layer ID is empty")
	}
	return nil
}
