package graphdriver

import (
	"errors"
	"fmt"
)

// ErrNotInitialized is returned for a call that reaches a plugin which has
// neither a live driver nor a saved Init to rebuild one from: dockerd never
// called GraphDriver.Init on it, or the saved state was removed.
var ErrNotInitialized = errors.New("the graphdriver plugin was never initialised")

// badRequestError marks a request the handler could not read. It is
// answered with HTTP 400 instead of 500.
type badRequestError struct {
	err error
}

func (e *badRequestError) Error() string { return e.err.Error() }

func (e *badRequestError) Unwrap() error { return e.err }

// badRequest wraps a formatted error as a badRequestError.
func badRequest(format string, args ...any) error {
	return &badRequestError{err: fmt.Errorf(format, args...)}
}
