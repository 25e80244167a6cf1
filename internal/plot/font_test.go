package plot

import (
	"image"
	"image/color"
	"testing"
)

func TestTextAndShapes(t *testing.T) {
	if w := TextWidth("ab", 2); w != (2*6-1)*2 {
		t.Errorf("TextWidth = %d", w)
	}
	if TextWidth("", 3) != 0 || TextHeight(3) != 21 {
		t.Error("empty width or height wrong")
	}
	img := image.NewRGBA(image.Rect(0, 0, 40, 20))
	red := color.RGBA{255, 0, 0, 255}
	DrawText(img, 0, 0, "1", 1, red)
	// '1' row 0 is 0x04: only column 2 is set.
	for x := range 5 {
		got := img.RGBAAt(x, 0) == red
		if got != (x == 2) {
			t.Errorf("'1' row 0 column %d set = %v", x, got)
		}
	}
	Fill(img, image.Rect(30, 10, 50, 30), red) // clipped, no panic
	if img.RGBAAt(39, 19) != red || img.RGBAAt(29, 10) == red {
		t.Error("Fill painted the wrong pixels")
	}
	HLine(img, 10, 12, 15, red)
	VLine(img, 20, 1, 3, red)
	if img.RGBAAt(11, 15) != red || img.RGBAAt(20, 2) != red || img.RGBAAt(13, 15) == red {
		t.Error("lines wrong")
	}
}
