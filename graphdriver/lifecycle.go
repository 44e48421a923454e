package graphdriver

import (
	"errors"
	"fmt"
	"slices"

	"github.com/sirupsen/logrus"
)

// driver returns the driver that serves calls. A plugin that dockerd
// restarted after a crash gets no second Init, so when there is no live
// driver it is rebuilt from the saved arguments of the last Init. Without
// saved arguments the error wraps ErrNotInitialized.
func (h *Handler) driver() (Driver, error) {
	if live := h.live.Load(); live != nil {
		return live.driver, nil
	}

	h.lifecycle.Lock()
	defer h.lifecycle.Unlock()

	// Another call may have rebuilt it while this one waited for the lock.
	if live := h.live.Load(); live != nil {
		return live.driver, nil
	}

	opts, err := h.state.load()
	if err != nil {
		return nil, err
	}

	d, err := h.newDriver(opts)
	if err != nil {
		return nil, fmt.Errorf("failed to rebuild driver for %s from %s: %w",
			opts.Home, h.state.path(), err)
	}
	h.live.Store(&liveDriver{driver: d, opts: opts})

	h.log.WithFields(logrus.Fields{
		"home":    opts.Home,
		"backend": d.String(),
		"state":   h.state.path(),
	}).Info("graphdriver rebuilt from saved Init")
	return d, nil
}

// initialize serves GraphDriver.Init.
//
// An Init with the same arguments as the live driver keeps that driver and
// only saves the arguments again. A legacy plugin outlives dockerd: a
// daemon that crashed comes back with a new Init but no Cleanup before it,
// and the containers it restores may still use layers the driver mounted.
//
// An Init with other arguments, another Home in particular, replaces the
// live driver. The old driver is cleaned up first, so that two drivers never
// hold mounts at once; a failure to clean it up is logged and does not stop
// the Init, since dockerd has moved on to the new Home either way. Then the
// new driver is built and its arguments are saved.
//
// If the new driver cannot be built or its arguments cannot be saved, the
// handler is left without a driver and the saved state is removed, so that
// no later call rebuilds a driver that dockerd did not ask for.
func (h *Handler) initialize(opts InitOptions) (retErr error) {
	h.lifecycle.Lock()
	defer h.lifecycle.Unlock()

	if live := h.live.Load(); live != nil {
		if sameInit(live.opts, opts) {
			h.log.WithField("home", opts.Home).
				Info("graphdriver initialised again with the same arguments, keeping the live driver")
			return h.state.save(opts)
		}
		h.live.Store(nil)
		h.retire(live, opts)
	}

	defer func() {
		if retErr != nil {
			retErr = errors.Join(retErr, h.state.remove())
		}
	}()

	d, err := h.newDriver(opts)
	if err != nil {
		return fmt.Errorf("failed to initialise driver in %s: %w", opts.Home, err)
	}
	if err := h.state.save(opts); err != nil {
		if cerr := d.Cleanup(); cerr != nil {
			cerr = fmt.Errorf("failed to clean up unsaved driver in %s: %w", opts.Home, cerr)
			err = errors.Join(err, cerr)
		}
		return err
	}
	h.live.Store(&liveDriver{driver: d, opts: opts})

	h.log.WithFields(logrus.Fields{
		"home":    opts.Home,
		"backend": d.String(),
		"opts":    opts.Opts,
	}).Info("graphdriver initialised")
	return nil
}

// retire cleans up a live driver that an Init with other arguments
// replaces. Its failure is not the Init's failure, so it is logged here.
func (h *Handler) retire(old *liveDriver, next InitOptions) {
	log := h.log.WithFields(logrus.Fields{
		"home":     old.opts.Home,
		"new-home": next.Home,
	})
	if err := old.driver.Cleanup(); err != nil {
		log.WithError(err).Warn("failed to clean up the graphdriver that a new Init replaces")
		return
	}
	log.Info("graphdriver replaced by a new Init")
}

// cleanup serves GraphDriver.Cleanup: it cleans up the live driver and
// drops it. The saved Init stays, so a call that still comes after Cleanup
// rebuilds the driver rather than failing. Without a live driver there is
// nothing to clean up, and none is rebuilt just for that.
func (h *Handler) cleanup() error {
	h.lifecycle.Lock()
	defer h.lifecycle.Unlock()

	live := h.live.Swap(nil)
	if live == nil {
		return nil
	}

	if err := live.driver.Cleanup(); err != nil {
		return fmt.Errorf("failed to clean up driver in %s: %w", live.opts.Home, err)
	}
	h.log.WithField("home", live.opts.Home).Info("graphdriver cleaned up")
	return nil
}

// errNoDriver is returned when the init function reports success but hands
// back no driver.
var errNoDriver = errors.New("init function returned no driver")

// newDriver calls the init function and checks what it returned.
func (h *Handler) newDriver(opts InitOptions) (Driver, error) {
	d, err := h.initFunc(opts)
	if err != nil {
		return nil, err
	}
	if d == nil {
		return nil, errNoDriver
	}
	return d, nil
}

// sameInit reports whether two Inits carry the same arguments. dockerd
// sends null and an empty list alike for "none".
func sameInit(a, b InitOptions) bool {
	return a.Home == b.Home &&
		slices.Equal(a.Opts, b.Opts) &&
		slices.Equal(a.UIDMaps, b.UIDMaps) &&
		slices.Equal(a.GIDMaps, b.GIDMaps)
}
