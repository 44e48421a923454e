package graphdriver

import (
	"errors"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/docker/go-plugins-helpers/sdk"
	"github.com/sirupsen/logrus"
)

// InitFunc builds a driver from the arguments of GraphDriver.Init. The
// handler calls it for an Init that needs a new driver, and again with the
// saved arguments when a call reaches a restarted plugin that dockerd did
// not initialise again.
type InitFunc func(InitOptions) (Driver, error)

// Config is what NewHandler needs.
type Config struct {
	// Init builds the driver. Required.
	Init InitFunc

	// StateDir is the directory where the handler saves the arguments of
	// the last successful Init, in the file named by StateFileName. It is
	// created on the first Init. Required.
	StateDir string

	// Log receives one entry per call. Nil means logrus's standard logger.
	Log *logrus.Entry
}

// Handler serves dockerd's graphdriver protocol in front of one driver.
//
// dockerd calls Init once, when it starts, and never again for a plugin
// that it restarts after a crash. The handler therefore saves the
// arguments of every successful Init in its state directory, and a call
// that finds no live driver rebuilds one from them before it is served.
// A call with neither a live driver nor saved arguments fails with an
// error that wraps ErrNotInitialized.
//
// Calls run concurrently and reach the driver without a lock. Only Init,
// Cleanup and the rebuild of a driver from saved state take the lifecycle
// lock, and they take it only against each other.
type Handler struct {
	initFunc InitFunc
	state    stateFile
	log      *logrus.Entry

	// lifecycle serializes Init, Cleanup and the rebuild from saved state.
	lifecycle sync.Mutex

	// live is the driver serving calls; nil before Init, after Cleanup, and
	// after a restart until the first call rebuilds it.
	live atomic.Pointer[liveDriver]
}

// liveDriver is a driver together with the Init arguments it was built
// from.
type liveDriver struct {
	driver Driver
	opts   InitOptions
}

// NewHandler returns a Handler for cfg. It builds no driver: that waits for
// GraphDriver.Init, or for the first call if a saved Init exists.
func NewHandler(cfg Config) (*Handler, error) {
	if cfg.Init == nil {
		return nil, errors.New("graphdriver handler needs an init function")
	}
	if cfg.StateDir == "" {
		return nil, errors.New("graphdriver handler needs a state directory")
	}

	log := cfg.Log
	if log == nil {
		log = logrus.NewEntry(logrus.StandardLogger())
	}

	return &Handler{
		initFunc: cfg.Init,
		state:    stateFile{dir: cfg.StateDir},
		log:      log,
	}, nil
}

// Register adds every GraphDriver endpoint to s. Create s with
// sdk.NewHandler(Manifest) so that it answers Plugin.Activate as well.
func (h *Handler) Register(s sdk.Handler) {
	s.HandleFunc(PathInit, h.serveInit)
	s.HandleFunc(PathCleanup, h.serveCleanup)
	s.HandleFunc(PathDiff, h.serveDiff)
	s.HandleFunc(PathApplyDiff, h.serveApplyDiff)

	for path, ep := range jsonEndpoints {
		s.HandleFunc(path, h.serveJSON(path, ep))
	}
}

// serveJSON returns the HTTP handler of an endpoint whose request and
// answer are both JSON.
func (h *Handler) serveJSON(path string, ep jsonEndpoint) http.HandlerFunc {
	errStatus := ep.errStatus
	if errStatus == 0 {
		errStatus = http.StatusInternalServerError
	}

	return func(w http.ResponseWriter, r *http.Request) {
		c := h.begin(path)

		var req Request
		if err := decodeJSON(r.Body, &req); err != nil {
			c.reply(w, nil, err, errStatus)
			return
		}
		c.about(req.ID, req.Parent)

		if ep.needsID {
			if err := requireLayerID(req.ID); err != nil {
				c.reply(w, nil, err, errStatus)
				return
			}
		}

		d, err := h.driver()
		if err != nil {
			c.reply(w, nil, err, errStatus)
			return
		}

		resp, err := ep.serve(d, &req)
		c.reply(w, resp, err, errStatus)
	}
}

// serveInit answers GraphDriver.Init.
func (h *Handler) serveInit(w http.ResponseWriter, r *http.Request) {
	c := h.begin(PathInit)

	var req InitRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		c.reply(w, nil, err, http.StatusInternalServerError)
		return
	}
	c.log = c.log.WithField("home", req.Home)

	if !filepath.IsAbs(req.Home) {
		err := badRequest("driver home %q is not an absolute path", req.Home)
		c.reply(w, nil, err, http.StatusInternalServerError)
		return
	}

	opts := InitOptions{
		Home:    req.Home,
		Opts:    req.Opts,
		UIDMaps: req.UIDMaps,
		GIDMaps: req.GIDMaps,
	}
	c.reply(w, nil, h.initialize(opts), http.StatusInternalServerError)
}

// serveCleanup answers GraphDriver.Cleanup.
//
// dockerd ignores a Cleanup answer whose status is not 200, so a failure is
// answered with 200 and Err set; the call's log entry is the other place
// where it is sure to be seen.
func (h *Handler) serveCleanup(w http.ResponseWriter, r *http.Request) {
	c := h.begin(PathCleanup)

	var req Request
	if err := decodeJSON(r.Body, &req); err != nil {
		c.reply(w, nil, err, http.StatusOK)
		return
	}

	c.reply(w, nil, h.cleanup(), http.StatusOK)
}
