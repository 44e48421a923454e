package graphdriver

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"sync"
)

// fakeDriver is a Driver that records its calls and answers with fixed
// values, or with err from every method that can fail.
type fakeDriver struct {
	opts InitOptions

	// err, when set, is returned by every method that returns an error.
	err error

	// diff, when set, makes the diff stream of Diff; nil means a short
	// fixed stream.
	diff func(id, parent string) io.ReadCloser

	mu    sync.Mutex
	calls []string
}

func (d *fakeDriver) record(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, fmt.Sprintf(format, args...))
}

// Calls returns the calls recorded so far.
func (d *fakeDriver) Calls() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.calls)
}

func (d *fakeDriver) String() string { return "fake" }

func (d *fakeDriver) Status() [][2]string {
	d.record("Status")
	return [][2]string{{"Backing Filesystem", "extfs"}, {"Layers", "2"}}
}

func (d *fakeDriver) GetMetadata(id string) (map[string]string, error) {
	d.record("GetMetadata %s", id)
	if d.err != nil {
		return nil, d.err
	}
	return map[string]string{"UpperDir": "/fake/" + id + "/diff"}, nil
}

func (d *fakeDriver) Cleanup() error {
	d.record("Cleanup")
	return d.err
}

func (d *fakeDriver) Create(id, parent string, opts CreateOpts) error {
	d.record("Create %s parent=%s label=%s opts=%v", id, parent, opts.MountLabel, opts.StorageOpt)
	return d.err
}

func (d *fakeDriver) CreateReadWrite(id, parent string, opts CreateOpts) error {
	d.record("CreateReadWrite %s parent=%s label=%s opts=%v",
		id, parent, opts.MountLabel, opts.StorageOpt)
	return d.err
}

func (d *fakeDriver) Remove(id string) error {
	d.record("Remove %s", id)
	return d.err
}

func (d *fakeDriver) Get(id, mountLabel string) (string, error) {
	d.record("Get %s label=%s", id, mountLabel)
	if d.err != nil {
		return "", d.err
	}
	return "/fake/" + id + "/merged", nil
}

func (d *fakeDriver) Put(id string) error {
	d.record("Put %s", id)
	return d.err
}

// Exists reports only the layer "present" as existing.
func (d *fakeDriver) Exists(id string) bool {
	d.record("Exists %s", id)
	return id == "present"
}

func (d *fakeDriver) Diff(id, parent string) (io.ReadCloser, error) {
	d.record("Diff %s parent=%s", id, parent)
	if d.err != nil {
		return nil, d.err
	}
	if d.diff != nil {
		return d.diff(id, parent), nil
	}
	return io.NopCloser(&patternReader{size: 1000}), nil
}

func (d *fakeDriver) Changes(id, parent string) ([]Change, error) {
	d.record("Changes %s parent=%s", id, parent)
	if d.err != nil {
		return nil, d.err
	}
	return []Change{
		{Path: "/etc/motd", Kind: ChangeModify},
		{Path: "/usr/bin/tool", Kind: ChangeAdd},
		{Path: "/tmp/old", Kind: ChangeDelete},
	}, nil
}

// ApplyDiff reads the whole diff and returns its length as the size.
func (d *fakeDriver) ApplyDiff(id, parent string, diff io.Reader) (int64, error) {
	n, err := io.Copy(io.Discard, diff)
	d.record("ApplyDiff %s parent=%s bytes=%d", id, parent, n)
	if err != nil {
		return 0, err
	}
	if d.err != nil {
		return 0, d.err
	}
	return n, nil
}

func (d *fakeDriver) DiffSize(id, parent string) (int64, error) {
	d.record("DiffSize %s parent=%s", id, parent)
	if d.err != nil {
		return 0, d.err
	}
	return 4096, nil
}

func (d *fakeDriver) Capabilities() Capabilities {
	d.record("Capabilities")
	return Capabilities{}
}

// patternReader yields size bytes, byte i being byte(i), and produces them
// only as they are read.
type patternReader struct {
	size int64
	off  int64

	// produced, if set, counts the bytes handed out so far.
	produced interface{ Add(int64) int64 }
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), r.size-r.off))
	fillPattern(p[:n], r.off)
	r.off += int64(n)
	if r.produced != nil {
		r.produced.Add(int64(n))
	}
	return n, nil
}

// failingReader yields good bytes from r and then fails with err.
type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

// closeFunc is an io.ReadCloser made of a reader and a close function.
type closeFunc struct {
	io.Reader
	close func() error
}

func (c closeFunc) Close() error { return c.close() }

// pattern holds two rounds of the bytes 0 to 255, so that any 256 bytes of
// the stream patternReader yields are one slice of it.
var pattern = func() (b [512]byte) {
	for i := range b {
		b[i] = byte(i)
	}
	return b
}()

// fillPattern fills p with the pattern stream from offset off.
func fillPattern(p []byte, off int64) {
	for n := 0; n < len(p); {
		start := int((off + int64(n)) % 256)
		n += copy(p[n:], pattern[start:start+256])
	}
}

// checkPattern returns the offset of the first byte of p that differs
// from the pattern stream at offset off, or -1.
func checkPattern(p []byte, off int64) int64 {
	for n := 0; n < len(p); {
		start := int((off + int64(n)) % 256)
		k := min(256, len(p)-n)
		if !bytes.Equal(p[n:n+k], pattern[start:start+k]) {
			return off + int64(n)
		}
		n += k
	}
	return -1
}
