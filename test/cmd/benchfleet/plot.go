package main

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// panel is one chart: a value of each result against node count, both
// axes in decades.
type panel struct {
	title string
	value func(Result) float64
}

var palette = []color.RGBA{
	{0x1f, 0x5f, 0xbf, 0xff}, // kubemetrics
	{0xe0, 0x70, 0x10, 0xff},
	{0x40, 0xa0, 0x40, 0xff},
	{0x90, 0x40, 0xa0, 0xff},
}

// plot draws CPU and resident memory against node count for every binary
// into a PNG.
func plot(path string, series map[string][]Result) error {
	const pw, ph, top = 600, 440, 40
	panels := []panel{
		{"CPU seconds per minute (steady state)", func(r Result) float64 { return r.CPUSecondsPerMinute }},
		{"resident memory, MiB (steady state)", func(r Result) float64 { return r.RSSSteadyMiB }},
	}
	img := image.NewRGBA(image.Rect(0, 0, pw*len(panels), ph+top))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	names := sortedKeys(series)
	// kubemetrics first, so it keeps the first colour.
	for i, n := range names {
		if n == "kubemetrics" {
			names[0], names[i] = names[i], names[0]
		}
	}
	text(img, 12, 18, color.Black, "metrics servers against fleet size, log-log (bench-fleet, 2 cores)")
	for i, name := range names {
		c := palette[i%len(palette)]
		fill(img, image.Rect(12+i*160, 28, 24+i*160, 34), c)
		text(img, 28+i*160, 35, c, name)
	}
	for pi, p := range panels {
		drawPanel(img, image.Rect(pi*pw, top, (pi+1)*pw, top+ph), p, names, series)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func drawPanel(img *image.RGBA, box image.Rectangle, p panel, names []string, series map[string][]Result) {
	plotArea := image.Rect(box.Min.X+70, box.Min.Y+30, box.Max.X-20, box.Max.Y-50)
	xmin, xmax := math.Inf(1), math.Inf(-1)
	ymin, ymax := math.Inf(1), math.Inf(-1)
	for _, rs := range series {
		for _, r := range rs {
			v := p.value(r)
			if v <= 0 || r.Nodes <= 0 {
				continue
			}
			xmin, xmax = math.Min(xmin, float64(r.Nodes)), math.Max(xmax, float64(r.Nodes))
			ymin, ymax = math.Min(ymin, v), math.Max(ymax, v)
		}
	}
	text(img, box.Min.X+70, box.Min.Y+18, color.Black, p.title)
	if math.IsInf(xmin, 1) {
		return
	}
	lx0, lx1 := decades(xmin, xmax)
	ly0, ly1 := decades(ymin, ymax)
	px := func(v float64) int {
		return plotArea.Min.X + int((math.Log10(v)-lx0)/(lx1-lx0)*float64(plotArea.Dx()))
	}
	py := func(v float64) int {
		return plotArea.Max.Y - int((math.Log10(v)-ly0)/(ly1-ly0)*float64(plotArea.Dy()))
	}
	grid := color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
	for d := lx0; d <= lx1; d++ {
		x := px(math.Pow(10, d))
		line(img, x, plotArea.Min.Y, x, plotArea.Max.Y, grid, 0)
		label := fmt.Sprintf("%g", math.Pow(10, d))
		text(img, x-len(label)*7/2, plotArea.Max.Y+16, color.Black, label)
	}
	for d := ly0; d <= ly1; d++ {
		y := py(math.Pow(10, d))
		line(img, plotArea.Min.X, y, plotArea.Max.X, y, grid, 0)
		label := fmt.Sprintf("%g", math.Pow(10, d))
		text(img, plotArea.Min.X-8-len(label)*7, y+4, color.Black, label)
	}
	line(img, plotArea.Min.X, plotArea.Max.Y, plotArea.Max.X, plotArea.Max.Y, color.Black, 0)
	line(img, plotArea.Min.X, plotArea.Min.Y, plotArea.Min.X, plotArea.Max.Y, color.Black, 0)
	text(img, plotArea.Min.X+plotArea.Dx()/2-35, plotArea.Max.Y+34, color.Black, "nodes (x30 pods)")
	for i, name := range names {
		c := palette[i%len(palette)]
		prevX, prevY := -1, -1
		for _, r := range series[name] {
			v := p.value(r)
			if v <= 0 {
				continue
			}
			x, y := px(float64(r.Nodes)), py(v)
			fill(img, image.Rect(x-3, y-3, x+4, y+4), c)
			if prevX >= 0 {
				line(img, prevX, prevY, x, y, c, 1)
			}
			label := fmt.Sprintf("%.3g", v)
			if v >= 100 {
				label = fmt.Sprintf("%.0f", v)
			}
			lx := x + 6
			if lx+7*len(label) > box.Max.X-4 {
				lx = x - 6 - 7*len(label)
			}
			text(img, lx, y-6, c, label)
			prevX, prevY = x, y
		}
	}
}

// decades widens [lo, hi] to whole powers of ten, at least one apart.
func decades(lo, hi float64) (float64, float64) {
	a, b := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if b <= a {
		b = a + 1
	}
	return a, b
}

func fill(img *image.RGBA, r image.Rectangle, c color.Color) {
	draw.Draw(img, r.Intersect(img.Bounds()), image.NewUniform(c), image.Point{}, draw.Src)
}

// line draws from (x0,y0) to (x1,y1), thickened by w pixels each side.
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.Color, w int) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for range dx - dy + 1 {
		fill(img, image.Rect(x0-w, y0-w, x0+w+1, y0+w+1), c)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func text(img *image.RGBA, x, y int, c color.Color, s string) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v < 0:
		return -1
	case v > 0:
		return 1
	}
	return 0
}
