// Package excerpt cuts outside text (error messages, answer bodies) to a
// bound for a message, a log line, a table cell or an API answer: never
// more bytes than the bound, cut on a rune boundary, the cut marked. It
// knows nothing about where the text comes from or goes.
package excerpt

import (
	"strings"
	"unicode/utf8"
)

// Mark ends a cut text.
const Mark = "..."

// Clip returns s when it has at most n bytes, else its longest prefix that
// ends on a rune boundary and, with Mark appended, has at most n bytes.
// The result never exceeds n bytes (n < 0 counts as 0); when n is too
// small for Mark, the prefix is cut to n bytes without it.
func Clip(s string, n int) string {
	n = max(n, 0)
	if len(s) <= n {
		return s
	}
	mark := Mark
	if n < len(mark) {
		mark = ""
	}
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// Flatten puts s on one line: each run of white space (newlines, tabs)
// becomes one space, and none is left at either end.
func Flatten(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// OneLine is Flatten, then Clip to n bytes: a table cell or a quoted body.
func OneLine(s string, n int) string {
	return Clip(Flatten(s), n)
}
