package report

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// line is one series of a chart.
type line struct {
	name  string
	color string
	ys    []float64 // NaN leaves a gap
}

// band shades the span of x between from and to (the publish phase).
type band struct{ from, to float64 }

const (
	chartW, chartH                     = 760, 260
	padLeft, padRight, padTop, padBott = 64, 16, 28, 36
)

// lineChart draws lines over xs as an inline SVG. Written by hand rather
// than with a charting library so the report stays one offline file.
func lineChart(title, unit string, xs []float64, lines []line, shade band) string {
	var b strings.Builder
	maxX, maxY := 1.0, 0.0
	for _, x := range xs {
		maxX = math.Max(maxX, x)
	}
	for _, l := range lines {
		for _, y := range l.ys {
			if !math.IsNaN(y) {
				maxY = math.Max(maxY, y)
			}
		}
	}
	maxY = niceCeil(maxY)
	plotW := float64(chartW - padLeft - padRight)
	plotH := float64(chartH - padTop - padBott)
	px := func(x float64) float64 { return padLeft + x/maxX*plotW }
	py := func(y float64) float64 { return padTop + plotH - y/maxY*plotH }

	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img">`, chartW, chartH, chartW, chartH)
	fmt.Fprintf(&b, `<text x="%d" y="18" class="title">%s</text>`, padLeft, html.EscapeString(title))
	if shade.to > shade.from {
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%.1f" class="phase"><title>publish phase</title></rect>`,
			px(shade.from), padTop, px(shade.to)-px(shade.from), plotH)
	}
	for i := 0; i <= 4; i++ {
		y := maxY * float64(i) / 4
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="grid"/>`, padLeft, chartW-padRight, py(y), py(y))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" class="axis" text-anchor="end">%s</text>`, padLeft-6, py(y)+4, short(y))
	}
	step := niceCeil(maxX / 8)
	for x := 0.0; x <= maxX+1e-9; x += step {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="axis" text-anchor="middle">%s</text>`, px(x), chartH-padBott+16, short(x))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" class="axis" text-anchor="end">seconds</text>`, chartW-padRight, chartH-4)
	fmt.Fprintf(&b, `<text x="12" y="%d" class="axis" transform="rotate(-90 12 %d)" text-anchor="middle">%s</text>`,
		padTop+int(plotH/2), padTop+int(plotH/2), html.EscapeString(unit))
	for _, l := range lines {
		var pts []string
		flush := func() {
			if len(pts) > 0 {
				fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.8" points="%s"/>`, l.color, strings.Join(pts, " "))
			}
			pts = pts[:0]
		}
		for i, y := range l.ys {
			if i >= len(xs) || math.IsNaN(y) {
				flush()
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(xs[i]), py(y)))
		}
		flush()
	}
	lx := float64(chartW - padRight)
	for i := len(lines) - 1; i >= 0; i-- {
		l := lines[i]
		name := html.EscapeString(l.name)
		lx -= float64(len(l.name))*6.5 + 26
		fmt.Fprintf(&b, `<rect x="%.1f" y="8" width="12" height="4" fill="%s"/><text x="%.1f" y="14" class="legend">%s</text>`, lx, l.color, lx+16, name)
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// short formats an axis value compactly: 1.5k, 2M, 0.25.
func short(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return trim(v/1e6) + "M"
	case a >= 1e4:
		return trim(v/1e3) + "k"
	case a >= 10 || a == 0:
		return fmt.Sprintf("%.0f", v)
	}
	return trim(v)
}

func trim(v float64) string {
	s := fmt.Sprintf("%.2f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}
