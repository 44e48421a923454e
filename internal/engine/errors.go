package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// ErrNotFound is matched, through errors.Is, by the error of a request for
// an image the daemon does not have.
var ErrNotFound = errors.New("not found")

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 64 << 10

// APIError is a failed Engine API call.
type APIError struct {
	Op         string // "save", "load"
	StatusCode int
	Message    string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("docker daemon refused to %s: %s (HTTP %d)", e.Op, e.Message, e.StatusCode)
}

// Is makes a 404 match ErrNotFound.
func (e *APIError) Is(target error) bool {
	return target == ErrNotFound && e.StatusCode == http.StatusNotFound
}

// responseError builds the error of a response whose status is not 2xx. The
// daemon answers {"message": "..."}; anything else is shown as text.
func responseError(op string, resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	msg := strings.TrimSpace(string(body))
	var decoded struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &decoded) == nil && decoded.Message != "" {
		msg = decoded.Message
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return &APIError{Op: op, StatusCode: resp.StatusCode, Message: msg}
}
