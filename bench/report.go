package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// figure is one measured quantity: several runs of one thing.
type figure struct {
	Part  string `json:"part"`
	Name  string `json:"name"`
	Nodes int    `json:"nodes,omitempty"`
	// Unit of Values: "s" for times, "B" for sizes, "" for counts.
	Unit   string    `json:"unit"`
	Values []float64 `json:"values"`
	// Bytes are the bytes that crossed the link in each run, for the
	// parts that measure it.
	Bytes []int64 `json:"bytes,omitempty"`
	// Retries counts samples taken again because the file server's mount
	// broke during the first try.
	Retries int `json:"retries,omitempty"`
}

func (f *figure) add(s sample) {
	f.Values = append(f.Values, s.seconds)
	f.Bytes = append(f.Bytes, s.bytes)
}

func (f *figure) addValue(v float64) { f.Values = append(f.Values, v) }

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianBytes(v []int64) int64 {
	f := make([]float64, len(v))
	for i, b := range v {
		f[i] = float64(b)
	}
	return int64(median(f))
}

// spread formats the median and the range of the values.
func (f *figure) spread() string {
	if len(f.Values) == 0 {
		return "-"
	}
	lo, hi := slices.Min(f.Values), slices.Max(f.Values)
	m := median(f.Values)
	switch f.Unit {
	case "B":
		if len(f.Values) == 1 {
			return formatBytes(int64(m))
		}
		return fmt.Sprintf("%s (%s–%s)", formatBytes(int64(m)), formatBytes(int64(lo)), formatBytes(int64(hi)))
	case "s":
		if len(f.Values) == 1 {
			return fmt.Sprintf("%.2f s", m)
		}
		return fmt.Sprintf("%.2f s (%.2f–%.2f)", m, lo, hi)
	default:
		if len(f.Values) == 1 {
			return fmt.Sprintf("%.4g %s", m, f.Unit)
		}
		return fmt.Sprintf("%.4g %s (%.4g–%.4g)", m, f.Unit, lo, hi)
	}
}

// report collects the figures and writes results.md, results.json and
// the plots.
type report struct {
	opts     options
	machine  string
	started  time.Time
	finished time.Time
	figures  []*figure
	// ratios pair a figure of the plugin with the same figure of
	// Docker's built-in overlay2.
	ratios []ratio
}

type ratio struct {
	Name    string  `json:"name"`
	Plugin  *figure `json:"plugin"`
	Builtin *figure `json:"builtin"`
}

func (r ratio) value() float64 {
	b := median(r.Builtin.Values)
	if b == 0 {
		return 0
	}
	return median(r.Plugin.Values) / b
}

// figure returns a new figure in seconds, recorded in the report.
func (r *report) figure(part, name string) *figure {
	f := &figure{Part: part, Name: name, Unit: "s"}
	r.figures = append(r.figures, f)
	return f
}

func (r *report) byPart(part string) []*figure {
	var out []*figure
	for _, f := range r.figures {
		if f.Part == part {
			out = append(out, f)
		}
	}
	return out
}

func (r *report) write() error {
	if err := r.writeJSON(); err != nil {
		return err
	}
	if err := r.plot(); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(r.opts.out, "results.md"), []byte(r.markdown()), 0o644)
}

func (r *report) writeJSON() error {
	doc := map[string]any{
		"machine": r.machine, "link": r.opts.link.String(), "runs": r.opts.runs, "quick": r.opts.quick,
		"started": r.started.UTC().Format(time.RFC3339), "figures": r.figures, "ratios": r.ratios,
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(r.opts.out, "results.json"), append(b, '\n'), 0o644)
}

func (r *report) markdown() string {
	var b strings.Builder
	mode := "full"
	if r.opts.quick {
		mode = "quick"
	}
	fmt.Fprintf(&b, "Run of %s (%s mode) on %s; link %s; image %s; %d runs per figure, median (min–max).\n\n",
		r.started.UTC().Format("2006-01-02 15:04 MST"), mode, r.machine, r.opts.link, r.image(), r.opts.runs)

	for _, f := range r.figures {
		if f.Retries > 0 {
			fmt.Fprintf(&b, "Taken again after a broken sshfs mount: %d sample(s) of %q.\n\n", f.Retries, f.Name)
		}
	}
	// timeAndBytes writes the figures of a part as a table of time and
	// bytes over the link, with the part's plot below it.
	timeAndBytes := func(part, heading, columns, plot string) {
		fs := r.byPart(part)
		if len(fs) == 0 {
			return
		}
		fmt.Fprintf(&b, "### %s\n\n| %s |\n|---|---|---|\n", heading, columns)
		for _, f := range fs {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", f.Name, f.spread(), formatBytes(medianBytes(f.Bytes)))
		}
		fmt.Fprintf(&b, "\n![%s](%s.png)\n\n", plot, part)
	}
	timeAndBytes("coldstart", "Cold start: image absent to first output",
		"image, workload | time to first output | bytes over the link", "cold start")
	timeAndBytes("cluster", "Cluster start-up: N nodes start the image at once",
		"image, nodes | time until every node printed | bytes over the link, all nodes", "cluster start-up")
	if len(r.ratios) > 0 {
		b.WriteString("### Overhead against Docker's built-in overlay2 (regular images)\n\n")
		b.WriteString("| operation | built-in overlay2 | plugin | plugin / built-in |\n|---|---|---|---|\n")
		for _, q := range r.ratios {
			fmt.Fprintf(&b, "| %s | %s | %s | %.2f |\n", q.Name, q.Builtin.spread(), q.Plugin.spread(), q.value())
		}
		b.WriteString("\n![overhead](overhead.png)\n\n")
	}
	if fs := r.byPart("scale"); len(fs) > 0 {
		b.WriteString("### Scale\n\n| figure | value |\n|---|---|\n")
		for _, f := range fs {
			fmt.Fprintf(&b, "| %s | %s |\n", f.Name, f.spread())
		}
		b.WriteString("\n")
	}
	return b.String()
}

func (r *report) image() string {
	if r.opts.quick {
		return "busybox with 64 MiB of data"
	}
	return "Debian 12 with Python, NumPy, gcc and 384 MiB of data"
}

// plot draws the PNG plots with gnuplot.
func (r *report) plot() error {
	type plotSpec struct {
		name, script string
		data         string
	}
	var plots []plotSpec

	if fs := r.byPart("coldstart"); len(fs) > 0 {
		var data strings.Builder
		for _, f := range fs {
			fmt.Fprintf(&data, "%q %.3f %.3f %.3f %.1f\n", f.Name, median(f.Values), slices.Min(f.Values), slices.Max(f.Values),
				float64(medianBytes(f.Bytes))/(1<<20))
		}
		plots = append(plots, plotSpec{"coldstart", `set title "Cold start: image absent to first output"
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.8 border -1
set ylabel "seconds (median)"
set y2label "MiB over the link (median)"
set y2tics
set ytics nomirror
set xtics rotate by -20
set bmargin 6
set yrange [0:*]
set y2range [0:*]
plot DATA using 2:xtic(1) title "seconds" axes x1y1, '' using 5 title "MiB" axes x1y2
`, data.String()})
	}
	if fs := r.byPart("cluster"); len(fs) > 0 {
		var thinD, fatD strings.Builder
		for _, f := range fs {
			w := &fatD
			if strings.HasPrefix(f.Name, "thin") {
				w = &thinD
			}
			fmt.Fprintf(w, "%d %.3f\n", f.Nodes, median(f.Values))
		}
		plots = append(plots, plotSpec{"cluster", `set title "Cluster start-up: N nodes start one image at once"
set xlabel "nodes"
set ylabel "seconds until every node printed"
set logscale x 2
set yrange [0:*]
set key top left
plot DATA index 0 using 1:2 with linespoints lw 2 title "thin", DATA index 1 using 1:2 with linespoints lw 2 title "fat"
`, thinD.String() + "\n\n" + fatD.String()})
	}
	if len(r.ratios) > 0 {
		var data strings.Builder
		for _, q := range r.ratios {
			fmt.Fprintf(&data, "%q %.3f\n", q.Name, q.value())
		}
		plots = append(plots, plotSpec{"overhead", `set title "Plugin against Docker's built-in overlay2 (1 = same)"
set style data histogram
set style fill solid 0.8 border -1
set ylabel "plugin / built-in (median)"
set xtics rotate by -25
set bmargin 9
set rmargin 14
set yrange [0:*]
set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2
plot DATA using 2:xtic(1) notitle
`, data.String()})
	}

	for _, p := range plots {
		dataPath := filepath.Join(r.opts.out, p.name+".dat")
		if err := os.WriteFile(dataPath, []byte(p.data), 0o644); err != nil {
			return err
		}
		script := fmt.Sprintf("set terminal pngcairo size 900,520 font \"sans,10\"\nset output %q\nDATA = %q\n%s",
			filepath.Join(r.opts.out, p.name+".png"), dataPath, p.script)
		cmd := exec.Command("gnuplot")
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("gnuplot %s: %w: %s", p.name, err, out)
		}
		if err := os.Remove(dataPath); err != nil {
			return err
		}
	}
	return nil
}
