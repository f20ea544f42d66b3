package excerpt

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestClip: the cases by hand, among them the two the old helpers got
// wrong (three bytes past the limit, a cut inside a rune).
func TestClip(t *testing.T) {
	for _, tt := range []struct {
		name string
		s    string
		n    int
		want string
	}{
		{"fits", "connection refused", 18, "connection refused"},
		{"cut, marked, within the limit", "connection refused", 10, "connect..."},
		{"cut before a two-byte rune", "ab\u00e9cd", 5, "ab..."},
		{"cut before a four-byte rune", "x\U0001F600yz", 6, "x..."},
		{"limit too small for the mark", "abcdef", 2, "ab"},
		{"limit too small, at a rune", "\u00e9\u00e9", 2, "\u00e9"},
		{"limit too small, inside a rune", "\u00e9\u00e9", 1, ""},
		{"only the mark fits", "\u00e9\u00e9", 3, "..."},
		{"zero", "abc", 0, ""},
		{"negative", "abc", -1, ""},
		{"empty", "", 5, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Clip(tt.s, tt.n); got != tt.want {
				t.Errorf("Clip(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
			}
		})
	}
}

// TestClipNeverExceedsTheLimit: for texts of one- to four-byte runes and
// every limit from 0 to past their length, the result has at most limit
// bytes, is valid UTF-8, is s itself when s fits, and else a prefix of s
// with or without the mark.
func TestClipNeverExceedsTheLimit(t *testing.T) {
	for _, s := range []string{
		"x509: certificate signed by unknown authority",
		strings.Repeat("\u00e9", 40),                       // two bytes each
		strings.Repeat("\u20ac", 30),                       // three bytes each
		strings.Repeat("\U0001F600", 20),                   // four bytes each
		"mixed: a\u00e9\u20ac\U0001F600 " + "\u4e2d\u6587", // all kinds
	} {
		for n := 0; n <= len(s)+4; n++ {
			got := Clip(s, n)
			if len(got) > n {
				t.Fatalf("Clip(%q, %d) has %d bytes", s, n, len(got))
			}
			if !utf8.ValidString(got) {
				t.Fatalf("Clip(%q, %d) = %q is cut inside a rune", s, n, got)
			}
			if len(s) <= n && got != s {
				t.Fatalf("Clip(%q, %d) = %q, want s whole", s, n, got)
			}
			if len(s) > n && !strings.HasPrefix(s, strings.TrimSuffix(got, Mark)) {
				t.Fatalf("Clip(%q, %d) = %q is no prefix of s", s, n, got)
			}
		}
	}
}

// TestOneLine: white space runs become one space before the cut.
func TestOneLine(t *testing.T) {
	if got, want := OneLine("  http status 500:\n\tInternal   Error\n", 100), "http status 500: Internal Error"; got != want {
		t.Errorf("OneLine = %q, want %q", got, want)
	}
	if got, want := OneLine("a\nb\nc\nd\ne\nf", 7), "a b ..."; got != want {
		t.Errorf("OneLine cut = %q, want %q", got, want)
	}
}
