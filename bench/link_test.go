package main

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"testing"
	"time"
)

// echoServer answers every connection with what it read, then closes.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// relayTo starts a relay on loopback to target.
func relayTo(t *testing.T, target string, delay time.Duration) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := startRelay(ln, target, delay)
	t.Cleanup(func() { r.close() })
	return r
}

// TestRelay checks that the relay delivers every byte in order, holds the
// data for the delay in each direction, and counts the bytes each way.
func TestRelay(t *testing.T) {
	tests := []struct {
		name  string
		size  int
		delay time.Duration
	}{
		{"small, no delay", 100, 0},
		{"one chunk, delayed", 1000, 50 * time.Millisecond},
		{"many chunks, delayed", 5 << 20, 20 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := relayTo(t, echoServer(t), tt.delay)

			payload := make([]byte, tt.size)
			rand.Read(payload)
			c, err := net.Dial("tcp", r.addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			go func() {
				c.Write(payload)
				c.(*net.TCPConn).CloseWrite()
			}()
			got, err := io.ReadAll(c)
			elapsed := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, payload) {
				t.Fatalf("got %d bytes back, not the %d sent", len(got), len(payload))
			}
			if min := 2 * tt.delay; elapsed < min {
				t.Errorf("round trip took %s, less than twice the one-way delay %s", elapsed, tt.delay)
			}
			// The server's close reaches the counters after the client
			// has read everything; wait for the relay's writers.
			deadline := time.Now().Add(5 * time.Second)
			for r.up.Load() != int64(tt.size) || r.down.Load() != int64(tt.size) {
				if time.Now().After(deadline) {
					t.Fatalf("counted %d up and %d down, want %d each", r.up.Load(), r.down.Load(), tt.size)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// TestRelayPipelines checks that the delay is a latency, not a pause per
// chunk: many chunks in flight arrive one delay late, not one delay each.
func TestRelayPipelines(t *testing.T) {
	const delay = 50 * time.Millisecond
	r := relayTo(t, echoServer(t), delay)
	c, err := net.Dial("tcp", r.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	payload := make([]byte, 40*chunkSize)
	start := time.Now()
	go func() {
		c.Write(payload)
		c.(*net.TCPConn).CloseWrite()
	}()
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Fatal(err)
	}
	// At one delay per chunk this would take 40 delays each way.
	if elapsed := time.Since(start); elapsed > 20*delay {
		t.Errorf("%d chunks took %s through a relay of %s one-way delay", 40, elapsed, delay)
	}
}

func TestMedianAndSpread(t *testing.T) {
	tests := []struct {
		name   string
		f      figure
		median float64
		spread string
	}{
		{"odd", figure{Unit: "s", Values: []float64{3, 1, 2}}, 2, "2.00 s (1.00–3.00)"},
		{"even", figure{Unit: "s", Values: []float64{4, 1, 2, 3}}, 2.5, "2.50 s (1.00–4.00)"},
		{"one", figure{Unit: "s", Values: []float64{1.5}}, 1.5, "1.50 s"},
		{"bytes", figure{Unit: "B", Values: []float64{2 << 20, 1 << 20, 3 << 20}}, 2 << 20, "2.0 MiB (1.0 MiB–3.0 MiB)"},
		{"none", figure{Unit: "s"}, 0, "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := median(tt.f.Values); got != tt.median {
				t.Errorf("median %v, want %v", got, tt.median)
			}
			if got := tt.f.spread(); got != tt.spread {
				t.Errorf("spread %q, want %q", got, tt.spread)
			}
		})
	}
}
