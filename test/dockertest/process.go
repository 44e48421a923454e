package dockertest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Process is a program the harness started, with its output in a log file.
// It is only ever signalled through its own pid.
type Process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	waitErr error         // set before done is closed
}

// StartProcess starts argv with stdout and stderr appended to logPath and
// the environment env. The process gets a process group of its own and is
// sent SIGTERM should the caller die first.
func StartProcess(name, logPath string, argv []string, env []string) (*Process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("failed to open log of %s: %w", name, err)
	}
	defer logFile.Close() // the child holds its own descriptor

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// A group of its own keeps a Ctrl-C on the test from reaching the
		// daemon before the cleanup can stop it in order.
		Setpgid: true,
		// If the test binary dies without running its cleanups (a -timeout
		// panic), the daemon is asked to stop rather than left running.
		Pdeathsig: syscall.SIGTERM,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("failed to start %s: %w", name, err)
	}

	p := &Process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid returns the process id the harness started.
func (p *Process) Pid() int {
	return p.cmd.Process.Pid
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM and waits up to grace for the process to end, then
// sends SIGKILL. It returns an error when the process had to be killed or
// ended with a failure other than the SIGTERM it was sent.
func (p *Process) Stop(grace time.Duration) error {
	if p.Exited() {
		return p.exitError()
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("failed to send SIGTERM to %s (pid %d): %w", p.name, p.Pid(), err)
	}
	select {
	case <-p.done:
		return p.exitError()
	case <-time.After(grace):
	}

	if err := p.Kill(); err != nil {
		return err
	}
	return fmt.Errorf("%s (pid %d) did not stop within %s of SIGTERM and was killed", p.name, p.Pid(), grace)
}

// exitError returns nil for a clean exit or an exit on SIGTERM, and the
// reason otherwise. It must only be called after done is closed.
func (p *Process) exitError() error {
	var exitErr *exec.ExitError
	if errors.As(p.waitErr, &exitErr) {
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
			return nil
		}
	}
	if p.waitErr != nil {
		return fmt.Errorf("%s (pid %d) exited: %w", p.name, p.Pid(), p.waitErr)
	}
	return nil
}

// LogPath returns the file the process's output goes to.
func (p *Process) LogPath() string { return p.logPath }

// Kill sends SIGKILL, as a crash would, and waits for the process to end.
func (p *Process) Kill() error {
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("failed to kill %s (pid %d): %w", p.name, p.Pid(), err)
	}
	<-p.done
	return nil
}

// logTail returns at most max bytes from the end of the process's log.
func (p *Process) logTail(max int64) string {
	return fileTail(p.logPath, max)
}

// fileTail returns at most max bytes from the end of a file, or a note on
// why it could not be read.
func fileTail(path string, max int64) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	defer f.Close()

	info, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(cannot stat %s: %v)", path, err)
	}
	prefix := ""
	if info.Size() > max {
		if _, err := f.Seek(info.Size()-max, io.SeekStart); err != nil {
			return fmt.Sprintf("(cannot seek in %s: %v)", path, err)
		}
		prefix = fmt.Sprintf("[... first %d bytes left out ...]\n", info.Size()-max)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	return prefix + string(b)
}
