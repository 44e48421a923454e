package graphdriver

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// dockerResponse is the answer as dockerd's graphdriver proxy declares it:
// Capabilities is a plain struct there, and a change kind a plain integer.
type dockerResponse struct {
	Err     string      `json:",omitempty"`
	Dir     string      `json:",omitempty"`
	Exists  bool        `json:",omitempty"`
	Status  [][2]string `json:",omitempty"`
	Changes []struct {
		Path string
		Kind int
	} `json:",omitempty"`
	Size         int64             `json:",omitempty"`
	Metadata     map[string]string `json:",omitempty"`
	Capabilities struct {
		ReproducesExactDiffs bool
	} `json:",omitempty"`
}

// dockerResult turns an answer into an error the way the proxy does after
// a call that reached the plugin.
func dockerResult(err error, ret dockerResponse) error {
	if err != nil {
		return err
	}
	if ret.Err != "" {
		return errors.New(ret.Err)
	}
	return nil
}

// TestDockerdLayerLifecycle walks a layer through the calls dockerd makes
// to pull an image, run a container on it and export it, reading each
// answer as dockerd's proxy does.
func TestDockerdLayerLifecycle(t *testing.T) {
	f := &fakeFactory{}
	p := startPlugin(t, t.TempDir(), f)

	call := func(method string, args any) dockerResponse {
		t.Helper()
		var ret dockerResponse
		if err := dockerResult(p.dockerCall(method, args, &ret), ret); err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		return ret
	}

	call("GraphDriver.Init", InitRequest{Home: "/var/lib/docker/cvmfs"})
	if caps := call("GraphDriver.Capabilities", Request{}).Capabilities; caps.ReproducesExactDiffs {
		t.Errorf("ReproducesExactDiffs is true, want false")
	}

	call("GraphDriver.Create", Request{ID: "l1"})
	var ret dockerResponse
	err := p.dockerSendFile(fmt.Sprintf("GraphDriver.ApplyDiff?id=%s&parent=%s", "l1", ""),
		&patternReader{size: 3000}, &ret)
	if err := dockerResult(err, ret); err != nil || ret.Size != 3000 {
		t.Fatalf("ApplyDiff: size %d, error %v; want 3000, no error", ret.Size, err)
	}

	call("GraphDriver.CreateReadWrite", Request{ID: "c1", Parent: "l1", MountLabel: "label"})
	dir := call("GraphDriver.Get", Request{ID: "c1", MountLabel: "label"}).Dir
	if dir != "/fake/c1/merged" {
		t.Errorf("Get: dir %q, want /fake/c1/merged", dir)
	}
	call("GraphDriver.Put", Request{ID: "c1"})

	changes := call("GraphDriver.Changes", Request{ID: "c1", Parent: "l1"}).Changes
	if len(changes) != 3 || changes[1].Path != "/usr/bin/tool" || changes[1].Kind != 1 {
		t.Errorf("Changes: got %+v", changes)
	}
	if size := call("GraphDriver.DiffSize", Request{ID: "c1", Parent: "l1"}).Size; size != 4096 {
		t.Errorf("DiffSize: got %d, want 4096", size)
	}

	tar, err := p.dockerStream("GraphDriver.Diff", Request{ID: "c1", Parent: "l1"})
	if err != nil {
		t.Fatalf("Diff: %v", err)
	}
	n, err := io.Copy(io.Discard, tar)
	tar.Close()
	if err != nil || n != 1000 {
		t.Errorf("Diff: read %d bytes, error %v; want 1000, no error", n, err)
	}

	if !call("GraphDriver.Exists", Request{ID: "present"}).Exists {
		t.Error("Exists: layer present reads as absent")
	}
	if call("GraphDriver.Exists", Request{ID: "c1"}).Exists {
		t.Error("Exists: layer c1 reads as present")
	}
	md := call("GraphDriver.GetMetadata", Request{ID: "c1"}).Metadata
	if md["UpperDir"] != "/fake/c1/diff" {
		t.Errorf("GetMetadata: got %v", md)
	}
	if status := call("GraphDriver.Status", Request{}).Status; len(status) != 2 {
		t.Errorf("Status: got %v", status)
	}
	call("GraphDriver.Remove", Request{ID: "c1"})
	call("GraphDriver.Cleanup", Request{})

	want := []string{
		"Capabilities",
		"Create l1 parent= label= opts=map[]",
		"ApplyDiff l1 parent= bytes=3000",
		"CreateReadWrite c1 parent=l1 label=label opts=map[]",
		"Get c1 label=label",
		"Put c1",
		"Changes c1 parent=l1",
		"DiffSize c1 parent=l1",
		"Diff c1 parent=l1",
		"Exists present",
		"Exists c1",
		"GetMetadata c1",
		"Status",
		"Remove c1",
		"Cleanup",
	}
	if calls := f.last(t).Calls(); strings.Join(calls, "\n") != strings.Join(want, "\n") {
		t.Errorf("driver calls:\n%s\nwant:\n%s", strings.Join(calls, "\n"), strings.Join(want, "\n"))
	}
}

// TestDockerdSeesFailures checks that each kind of failure reaches
// dockerd's proxy as an error carrying the driver's message, including
// the Cleanup failure that an HTTP 500 would hide.
func TestDockerdSeesFailures(t *testing.T) {
	f := &fakeFactory{driverErr: errBroken}
	p := startPlugin(t, t.TempDir(), f)
	p.mustInit(t.TempDir())

	methods := []string{"GraphDriver.Create", "GraphDriver.Get", "GraphDriver.Changes", "GraphDriver.Cleanup"}
	for _, method := range methods {
		t.Run(method, func(t *testing.T) {
			var ret dockerResponse
			err := dockerResult(p.dockerCall(method, Request{ID: "l2"}, &ret), ret)
			if err == nil || !strings.Contains(err.Error(), errBroken.Error()) {
				t.Errorf("got %v, want an error with %q", err, errBroken)
			}
		})
	}

	t.Run("GraphDriver.Diff", func(t *testing.T) {
		_, err := p.dockerStream("GraphDriver.Diff", Request{ID: "l2"})
		if err == nil || !strings.Contains(err.Error(), errBroken.Error()) {
			t.Errorf("got %v, want an error with %q", err, errBroken)
		}
	})

	t.Run("GraphDriver.ApplyDiff", func(t *testing.T) {
		var ret dockerResponse
		err := p.dockerSendFile("GraphDriver.ApplyDiff?id=l2&parent=l1", strings.NewReader("tar"), &ret)
		err = dockerResult(err, ret)
		if err == nil || !strings.Contains(err.Error(), errBroken.Error()) {
			t.Errorf("got %v, want an error with %q", err, errBroken)
		}
	})
}
