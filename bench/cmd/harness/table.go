package main

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
)

// row is one line of the result table. met is "yes", "NO" or "" (a figure
// reported for context, with no target).
type row struct {
	figure, latch, baseline, ratio, target, met string
}

type table struct{ rows []row }

func (t *table) add(r row) { t.rows = append(t.rows, r) }

// check adds a row with a target: ratio compared with limit (atMost: ≤).
func (t *table) check(figure, latch, baseline string, ratio, limit float64, atMost bool, target string) {
	met := "yes"
	if (atMost && ratio > limit) || (!atMost && ratio < limit) {
		met = "NO"
	}
	t.add(row{figure, latch, baseline, fmt.Sprintf("%.2f×", ratio), target, met})
}

func (t *table) info(figure, latch, baseline, ratio string) {
	t.add(row{figure, latch, baseline, ratio, "—", "—"})
}

// String renders a Markdown table, readable as plain text too.
func (t *table) String() string {
	head := row{"figure", "latch", "baseline", "ratio", "target", "met?"}
	all := append([]row{head}, t.rows...)
	w := make([]int, 6)
	for _, r := range all {
		for i, c := range r.cells() {
			w[i] = max(w[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	line := func(cs []string) {
		b.WriteString("|")
		for i, c := range cs {
			fmt.Fprintf(&b, " %s%s |", c, strings.Repeat(" ", w[i]-len([]rune(c))))
		}
		b.WriteString("\n")
	}
	line(head.cells())
	sep := make([]string, 6)
	for i := range sep {
		sep[i] = strings.Repeat("-", w[i])
	}
	line(sep)
	for _, r := range t.rows {
		line(r.cells())
	}
	b.WriteString("\nlatch and baseline: medians over the rounds; the ratio of a row with a target is the median of\n" +
		"the per-round ratios (each round measures latch and its baseline back to back), other ratios divide the medians.\n")
	return b.String()
}

func (r row) cells() []string {
	return []string{r.figure, r.latch, r.baseline, r.ratio, r.target, r.met}
}

// median of xs (the mean of the middle two for an even count).
// pairedRatio is the median over rounds of a[i]/b[i]: each round measures
// latch and its baseline back to back, so a ratio within a round is free of
// the drift between rounds on a shared machine, which moves both alike.
func pairedRatio(a, b []float64) float64 {
	var r []float64
	for i := range min(len(a), len(b)) {
		if b[i] != 0 {
			r = append(r, a[i]/b[i])
		}
	}
	return median(r)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func numCPU() int { return runtime.NumCPU() }
