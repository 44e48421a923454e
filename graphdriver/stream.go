package graphdriver

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// diffChunkSize is the size of one read from a driver's diff stream, and
// the most of it the handler holds at any time.
const diffChunkSize = 32 << 10

// serveDiff answers GraphDriver.Diff with the layer's tar as the raw body
// of a 200 answer, streamed as the driver produces it.
//
// The status line waits for the first chunk of the tar: a driver that fails
// before producing a byte gets a 500 answer with Err, which dockerd reports.
// Once the 200 is out, a failure can only be signalled by breaking the
// connection before the end of the chunked body; dockerd's reader then gets
// an unexpected EOF instead of a tar that looks complete but is not.
func (h *Handler) serveDiff(w http.ResponseWriter, r *http.Request) {
	c := h.begin(PathDiff)

	var req Request
	if err := decodeJSON(r.Body, &req); err != nil {
		c.reply(w, nil, err, http.StatusInternalServerError)
		return
	}
	c.about(req.ID, req.Parent)

	if err := requireLayerID(req.ID); err != nil {
		c.reply(w, nil, err, http.StatusInternalServerError)
		return
	}

	d, err := h.driver()
	if err != nil {
		c.reply(w, nil, err, http.StatusInternalServerError)
		return
	}

	tar, err := d.Diff(req.ID, req.Parent)
	if err != nil {
		c.reply(w, nil, err, http.StatusInternalServerError)
		return
	}

	buf := make([]byte, diffChunkSize)
	n, err := readSome(tar, buf)
	if n == 0 && err != nil && !errors.Is(err, io.EOF) {
		err = fmt.Errorf("failed to read diff of layer %s: %w", req.ID, err)
		c.reply(w, nil, errors.Join(err, closeDiff(tar, req.ID)), http.StatusInternalServerError)
		return
	}

	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)

	sent, err := sendDiff(w, tar, buf, n, err)
	if err != nil {
		err = fmt.Errorf("failed to stream diff of layer %s after %d bytes: %w", req.ID, sent, err)
	}
	err = errors.Join(err, closeDiff(tar, req.ID))
	c.log = c.log.WithField("bytes", sent)
	c.finish(err)

	if err != nil {
		abortAnswer(w)
	}
}

// readSome reads from r until it gets at least one byte or an error, and
// keeps an error that comes together with data.
func readSome(r io.Reader, buf []byte) (int, error) {
	for {
		n, err := r.Read(buf)
		if n > 0 || err != nil {
			return n, err
		}
	}
}

// sendDiff writes the n bytes already read into buf, then copies the rest
// of tar to w through buf. readErr is the error of the read that filled
// buf. It returns the number of bytes written.
//
// It does not use io.Copy, whose error does not say whether reading the
// diff or sending it failed.
func sendDiff(w io.Writer, tar io.Reader, buf []byte, n int, readErr error) (int64, error) {
	var sent int64
	for {
		if n > 0 {
			m, err := w.Write(buf[:n])
			sent += int64(m)
			if err != nil {
				return sent, fmt.Errorf("failed to send: %w", err)
			}
		}
		if errors.Is(readErr, io.EOF) {
			return sent, nil
		}
		if readErr != nil {
			return sent, fmt.Errorf("failed to read: %w", readErr)
		}
		n, readErr = tar.Read(buf)
	}
}

// closeDiff closes a driver's diff stream. A diff is complete only if it
// also closes cleanly.
func closeDiff(tar io.Closer, id string) error {
	if err := tar.Close(); err != nil {
		return fmt.Errorf("failed to close diff of layer %s: %w", id, err)
	}
	return nil
}

// abortAnswer sends what has been written of the answer and then breaks
// the connection, so that the client sees the body end without its
// terminating chunk. net/http does this for a handler that panics with
// http.ErrAbortHandler, and logs nothing for it.
func abortAnswer(w http.ResponseWriter) {
	// A failed flush means the connection is broken already.
	_ = http.NewResponseController(w).Flush()
	panic(http.ErrAbortHandler)
}

// serveApplyDiff answers GraphDriver.ApplyDiff. dockerd sends the layer ID
// and parent in the query string and the layer's tar as the raw request
// body, which goes to the driver as it arrives.
func (h *Handler) serveApplyDiff(w http.ResponseWriter, r *http.Request) {
	c := h.begin(PathApplyDiff)

	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		c.reply(w, nil, badRequest("failed to parse query %q: %w", r.URL.RawQuery, err),
			http.StatusInternalServerError)
		return
	}
	id, parent := query.Get("id"), query.Get("parent")
	c.about(id, parent)

	if err := requireLayerID(id); err != nil {
		c.reply(w, nil, err, http.StatusInternalServerError)
		return
	}

	d, err := h.driver()
	if err != nil {
		c.reply(w, nil, err, http.StatusInternalServerError)
		return
	}

	size, err := d.ApplyDiff(id, parent, r.Body)
	if err != nil {
		c.reply(w, nil, err, http.StatusInternalServerError)
		return
	}
	c.reply(w, &Response{Size: size}, nil, http.StatusInternalServerError)
}
