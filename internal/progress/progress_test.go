package progress

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// fakeClock advances by step on every reading.
func fakeClock(step time.Duration) func() time.Time {
	now := time.Unix(1000, 0)
	return func() time.Time {
		now = now.Add(step)
		return now
	}
}

func TestModes(t *testing.T) {
	tests := []struct {
		mode     Mode
		contains []string
		excludes []string
	}{
		{Plain, []string{"layer 1: started, 2.0 KiB\n", "layer 1: unpacked, 2.0 KiB / 2.0 KiB in", "B/s)\n", "layer 2: failed after 1.0 KiB"}, []string{"\r"}},
		{TTY, []string{"\r\033[K", "[", "layer 1: unpacked"}, nil},
		{Quiet, nil, []string{"layer"}},
	}
	for _, tt := range tests {
		t.Run(string(tt.mode), func(t *testing.T) {
			var out bytes.Buffer
			p, err := New(&out, tt.mode)
			if err != nil {
				t.Fatal(err)
			}
			p.now = fakeClock(6 * time.Second)

			task := p.Start("layer 1", 2048)
			task.Write(make([]byte, 1024))
			task.Write(make([]byte, 1024))
			task.Done("unpacked", nil)
			task = p.Start("layer 2", -1)
			task.Write(make([]byte, 1024))
			task.Done("", errors.New("boom"))

			for _, s := range tt.contains {
				if !strings.Contains(out.String(), s) {
					t.Errorf("output lacks %q:\n%s", s, out.String())
				}
			}
			for _, s := range tt.excludes {
				if strings.Contains(out.String(), s) {
					t.Errorf("output has %q:\n%s", s, out.String())
				}
			}
		})
	}
}

func TestAutoIsPlainOffTerminal(t *testing.T) {
	p, err := New(&bytes.Buffer{}, Auto)
	if err != nil || p.Mode() != Plain {
		t.Fatalf("New(auto) off a terminal = %v, %v; want plain", p.Mode(), err)
	}
	if _, err := New(&bytes.Buffer{}, "fancy"); err == nil {
		t.Error("New(fancy) succeeded")
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 3 << 20: "3.0 MiB", 5 << 30: "5.0 GiB"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
