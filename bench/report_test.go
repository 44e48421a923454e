package main

import (
	"strings"
	"testing"
	"time"
)

func TestMarkdownTables(t *testing.T) {
	r := &report{opts: options{runs: 2}, machine: "test", started: time.Unix(0, 0)}
	r.figures = []*figure{
		{Part: "coldstart", Name: "thin, numpy", Unit: "s", Values: []float64{2, 4}, Bytes: []int64{1 << 20, 3 << 20}},
		{Part: "cluster", Name: "fat, 8 nodes", Unit: "s", Values: []float64{10}, Bytes: []int64{5 << 30}},
	}
	md := r.markdown()

	for _, want := range []string{
		"### Cold start: image absent to first output\n\n" +
			"| image, workload | time to first output | bytes over the link |\n|---|---|---|\n" +
			"| thin, numpy | 3.00 s (2.00–4.00) | " + formatBytes(2<<20) + " |\n\n" +
			"![cold start](coldstart.png)\n\n",
		"### Cluster start-up: N nodes start the image at once\n\n" +
			"| image, nodes | time until every node printed | bytes over the link, all nodes |\n|---|---|---|\n" +
			"| fat, 8 nodes | 10.00 s | " + formatBytes(5<<30) + " |\n\n" +
			"![cluster start-up](cluster.png)\n\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("results.md lacks\n%s\nin\n%s", want, md)
		}
	}
	if strings.Contains(md, "Overhead") || strings.Contains(md, "Scale") {
		t.Errorf("results.md has sections for parts that were not run:\n%s", md)
	}
}
