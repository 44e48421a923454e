// Package dockertest runs private Docker daemons for end-to-end tests of the
// graphdriver plugin.
//
// Each daemon lives in a directory of its own, /tmp/cvmfse2e-<8 hex digits>,
// holding its data root, exec root, API socket, pid file, configuration and
// logs, and the state directory of its plugin. The names have a fixed
// length so that no daemon directory is a prefix of another: runc 1.1 finds
// the parent mount of a root file system by string prefix and fails with
// "pivot_root .: invalid argument" when one data root's name begins another.
//
// A daemon with a plugin runs it as a legacy plugin: the plugin listens on
// /run/docker/plugins/<name>.sock and dockerd is started with
// "--experimental -s <name>", so dockerd hands it the home directory
// <data-root>/<name>. The plugin name is "cvmfse2e" and the same 8 hex
// digits, short and free of colons, which would otherwise end up in overlay
// mount options.
//
// Everything a daemon starts is undone by t.Cleanup, on success, failure and
// panic alike: dockerd and then the plugin are stopped by the pids the
// harness started them with (never by name), every mount below the daemon
// directory is unmounted deepest first, the plugin socket is removed and
// the directory deleted. A mount that is still there after that fails the
// test, and the directory is then kept rather than deleted through it.
//
// The tests need root, dockerd with its containerd and runc, the docker
// client at /usr/bin/docker and a static busybox; Require skips a test that
// was not asked to run and fails one that was asked but lacks any of them.
package dockertest
