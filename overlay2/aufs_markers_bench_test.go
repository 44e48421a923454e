package overlay2

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// makeLayerTree writes a layer of dirs directories with files files each,
// and an opaque marker in every tenth directory and a whiteout in every
// twentieth, roughly the density seen in Debian-based images published by
// ingest.
func makeLayerTree(b *testing.B, dir string, dirs, files int) {
	b.Helper()
	for i := 0; i < dirs; i++ {
		d := filepath.Join(dir, fmt.Sprintf("usr/share/pkg%03d/sub%02d", i/20, i%20))
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.Fatal(err)
		}
		for j := 0; j < files; j++ {
			if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("file%03d", j)), nil, 0o644); err != nil {
				b.Fatal(err)
			}
		}
		if i%10 == 0 {
			os.WriteFile(filepath.Join(d, aufsOpaqueMarker), nil, 0o644)
		}
		if i%20 == 5 {
			os.WriteFile(filepath.Join(d, aufsWhiteoutPrefix+"file000"), nil, 0o644)
		}
	}
}

// BenchmarkScanMarkers measures the walk that finds AUFS markers in a
// repository layer of 50,000 files.
func BenchmarkScanMarkers(b *testing.B) {
	dir := b.TempDir()
	const dirs, files = 1000, 50
	makeLayerTree(b, dir, dirs, files)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m, err := scanMarkers(dir)
		if err != nil {
			b.Fatal(err)
		}
		if len(m.opaques) != dirs/10 {
			b.Fatalf("found %d opaque markers, want %d", len(m.opaques), dirs/10)
		}
	}
	b.ReportMetric(float64(dirs*files)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkBuildWhiteoutLayer measures building the whiteout layer of a
// 50,000-file layer with markers above a layer of the same shape.
func BenchmarkBuildWhiteoutLayer(b *testing.B) {
	if os.Getuid() != 0 {
		b.Skip("needs root to make whiteouts")
	}
	base, top := b.TempDir(), b.TempDir()
	const dirs, files = 1000, 50
	makeLayerTree(b, base, dirs, files)
	makeLayerTree(b, top, dirs, files/2)
	m, err := scanMarkers(top)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := filepath.Join(b.TempDir(), "w")
		if err := buildWhiteoutLayer(w, top, []string{base}, m); err != nil {
			b.Fatal(err)
		}
	}
}
