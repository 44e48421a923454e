package main

import (
	"fmt"
	"io"
	"sync"

	"github.com/sirupsen/logrus"
)

// splitOutput sends log entries at level Error and worse to one writer and
// the rest to another. dockerd copies a managed plugin's stdout into its
// own log at level info and its stderr at level error, so this keeps the
// plugin's levels roughly right in dockerd's log.
//
// logrus fires hooks without holding a lock, so writes are serialized here.
type splitOutput struct {
	mu     sync.Mutex
	out    io.Writer
	errOut io.Writer
}

// Levels makes the hook see every entry.
func (s *splitOutput) Levels() []logrus.Level {
	return logrus.AllLevels
}

// Fire writes one formatted entry.
func (s *splitOutput) Fire(entry *logrus.Entry) error {
	line, err := entry.Bytes()
	if err != nil {
		return fmt.Errorf("failed to format log entry: %w", err)
	}

	w := s.out
	if entry.Level <= logrus.ErrorLevel {
		w = s.errOut
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := w.Write(line); err != nil {
		return fmt.Errorf("failed to write log entry: %w", err)
	}
	return nil
}

// newLogger returns a logger at level that writes through splitOutput.
func newLogger(level logrus.Level, out, errOut io.Writer) *logrus.Logger {
	log := logrus.New()
	log.SetLevel(level)
	log.SetOutput(io.Discard)
	log.SetFormatter(&logrus.TextFormatter{DisableColors: true, FullTimestamp: true})
	log.AddHook(&splitOutput{out: out, errOut: errOut})
	return log
}
