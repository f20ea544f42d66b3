package kubelet

import (
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxSnippet bounds how many bytes of a kubelet's error body an error quotes.
const maxSnippet = 256

// statusError is the error for a kubelet answering status code with body:
// "http status 401: Unauthorized", or "http status 503" when the body holds
// nothing printable. It reads at most maxSnippet bytes of body.
func statusError(code int, body io.Reader) error {
	if s := snippet(body); s != "" {
		return fmt.Errorf("http status %d: %s", code, s)
	}
	return fmt.Errorf("http status %d", code)
}

// snippet returns the start of an error body (at most maxSnippet bytes, cut
// on a rune boundary) on one line: each run of white space or control
// characters becomes one space, and none is left at either end, so the
// kubelet's trailing newline never reaches an error message. A read error
// ends the excerpt where it happened.
func snippet(r io.Reader) string {
	buf := make([]byte, maxSnippet)
	n, _ := io.ReadFull(r, buf) // the bytes before any error still count
	b := buf[:n]
	for !utf8.Valid(b) && len(b) > 0 {
		b = b[:len(b)-1]
	}
	var out strings.Builder
	out.Grow(len(b))
	blank := false
	for _, c := range string(b) {
		if unicode.IsSpace(c) || unicode.IsControl(c) {
			blank = out.Len() > 0
			continue
		}
		if blank {
			out.WriteByte(' ')
			blank = false
		}
		out.WriteRune(c)
	}
	return out.String()
}
