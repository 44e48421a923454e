package overlay2

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// inPrivateFS runs fn on an OS thread whose file system context (working
// directory, root and umask) is its own, with a umask of 0 and dir as the
// working directory when dir is not empty. Unpacking a layer needs umask 0
// to reproduce the modes in the tar, and mounting with relative paths needs
// the home directory as working directory; neither may leak into the rest
// of the process, which serves other calls at the same time.
//
// fn must not start goroutines that touch the file system: they would run on
// other threads.
func inPrivateFS(dir string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// The thread is never unlocked: when the goroutine returns, the
		// runtime ends the thread together with its private context.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- fmt.Errorf("failed to unshare the file system context: %w", err)
			return
		}
		unix.Umask(0)
		if dir != "" {
			if err := unix.Chdir(dir); err != nil {
				errc <- fmt.Errorf("failed to change directory to %s: %w", dir, err)
				return
			}
		}
		errc <- fn()
	}()
	return <-errc
}
