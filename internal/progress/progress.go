// Package progress shows how long work advances: on a terminal, one bar per
// task with bytes done, total and rate, redrawn in place; elsewhere (a log,
// a pipe, CI), plain lines when a task starts and ends, and every few
// seconds in between, so that a log shows a long layer is still moving.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Mode is how progress is shown.
type Mode string

// Modes, named as `docker buildx build --progress` names them.
const (
	Auto  Mode = "auto"  // TTY on a terminal, Plain otherwise
	TTY   Mode = "tty"   // bars redrawn in place
	Plain Mode = "plain" // lines
	Quiet Mode = "quiet" // nothing
)

// Timing of the output.
const (
	ttyRefresh    = 100 * time.Millisecond
	plainInterval = 5 * time.Second
	barWidth      = 30
)

// Printer prints the progress of tasks that run one after the other.
type Printer struct {
	out  io.Writer
	mode Mode
	now  func() time.Time
}

// New returns a printer writing to out in the given mode. Auto picks TTY
// when out is a terminal.
func New(out io.Writer, mode Mode) (*Printer, error) {
	switch mode {
	case Auto:
		mode = Plain
		if isTerminal(out) {
			mode = TTY
		}
	case TTY, Plain, Quiet:
	default:
		return nil, fmt.Errorf("unknown progress mode %q (want auto, tty, plain or quiet)", mode)
	}
	return &Printer{out: out, mode: mode, now: time.Now}, nil
}

// Mode returns the mode in use, never Auto.
func (p *Printer) Mode() Mode { return p.mode }

// Printf prints a line of its own, unless the printer is quiet.
func (p *Printer) Printf(format string, args ...any) {
	if p.mode == Quiet {
		return
	}
	fmt.Fprintf(p.out, format+"\n", args...)
}

// Start begins a task that moves total bytes, or an unknown number when
// total is negative. The task counts the bytes written to it.
func (p *Printer) Start(name string, total int64) *Task {
	t := &Task{p: p, name: name, total: total, start: p.now()}
	t.last = t.start
	if p.mode == Plain {
		if total >= 0 {
			fmt.Fprintf(p.out, "%s: started, %s\n", name, formatBytes(total))
		} else {
			fmt.Fprintf(p.out, "%s: started\n", name)
		}
	}
	if p.mode == TTY {
		t.draw()
	}
	return t
}

// Task is one piece of work whose bytes are counted.
type Task struct {
	p     *Printer
	name  string
	total int64
	start time.Time

	mu   sync.Mutex
	done int64
	last time.Time // last redraw or line
	over bool
}

// Write counts len(b) bytes done.
func (t *Task) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()

	t.done += int64(len(b))
	now := t.p.now()
	switch t.p.mode {
	case TTY:
		if now.Sub(t.last) >= ttyRefresh {
			t.last = now
			t.draw()
		}
	case Plain:
		if now.Sub(t.last) >= plainInterval {
			t.last = now
			fmt.Fprintf(t.p.out, "%s: %s\n", t.name, t.status(now))
		}
	}
	return len(b), nil
}

// Done ends the task with a note ("unpacked", "already present") or with
// the error that stopped it.
func (t *Task) Done(note string, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()

	if t.over || t.p.mode == Quiet {
		t.over = true
		return
	}
	t.over = true
	now := t.p.now()
	var line string
	switch {
	case err != nil:
		line = fmt.Sprintf("%s: failed after %s", t.name, formatBytes(t.done))
	case t.done > 0:
		line = fmt.Sprintf("%s: %s, %s", t.name, note, t.status(now))
	default:
		line = fmt.Sprintf("%s: %s", t.name, note)
	}
	if t.p.mode == TTY {
		fmt.Fprintf(t.p.out, "\r\033[K%s\n", line)
		return
	}
	fmt.Fprintln(t.p.out, line)
}

// status says how far the task is: bytes, total when known, and rate.
func (t *Task) status(now time.Time) string {
	var b strings.Builder
	b.WriteString(formatBytes(t.done))
	if t.total >= 0 {
		b.WriteString(" / " + formatBytes(t.total))
	}
	if elapsed := now.Sub(t.start); elapsed > 0 {
		rate := float64(t.done) / elapsed.Seconds()
		fmt.Fprintf(&b, " in %s (%s/s)", elapsed.Round(10*time.Millisecond), formatBytes(int64(rate)))
	}
	return b.String()
}

// draw redraws the task's bar on the terminal line.
func (t *Task) draw() {
	bar := strings.Repeat("-", barWidth)
	if t.total > 0 {
		filled := int(float64(barWidth) * float64(min(t.done, t.total)) / float64(t.total))
		bar = strings.Repeat("=", filled) + strings.Repeat(" ", barWidth-filled)
		if filled < barWidth {
			bar = strings.Repeat("=", filled) + ">" + strings.Repeat(" ", barWidth-filled-1)
		}
	}
	fmt.Fprintf(t.p.out, "\r\033[K%s [%s] %s", t.name, bar, t.status(t.p.now()))
}

// formatBytes writes n in binary units.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
