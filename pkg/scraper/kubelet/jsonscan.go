package kubelet

import (
	"errors"
	"fmt"
	"io"
	"unicode/utf16"
	"unicode/utf8"
)

// maxJSONDepth is the deepest nesting accepted, encoding/json's own bound.
const maxJSONDepth = 10000

// jsonScanner reads one JSON text through a fixed window, value by value,
// so no value of the body is ever held whole: a string the caller keeps
// is bounded by the caller, everything else is read past. It accepts the
// texts encoding/json accepts and unescapes strings as encoding/json does
// (invalid UTF-8 and lone surrogates become U+FFFD).
//
// Value readers take the value's first byte, already consumed.
type jsonScanner struct {
	r        io.Reader
	buf      []byte // the window; its size never changes
	pos, end int
	rerr     error // the reader's error once seen; io.EOF at the end
	// str is the string last read, unescaped, at most its limit.
	str []byte
	// num is the number last read, at most maxNumber bytes.
	num []byte
	// open is the nesting of the value being skipped: '[' or '{' a level.
	open []byte
}

// maxNumber bounds the text of a number we read; a longer one does not
// fit any number we keep.
const maxNumber = 64

// errSyntax is wrapped by every syntax error.
var errSyntax = errors.New("invalid JSON")

func (s *jsonScanner) reset(r io.Reader) {
	s.r, s.pos, s.end, s.rerr = r, 0, 0, nil
	s.str, s.num, s.open = s.str[:0], s.num[:0], s.open[:0]
}

// fill makes at least n bytes available from pos, fewer only at the end
// of the body. It reports whether any byte is available.
func (s *jsonScanner) fill(n int) bool {
	for s.end-s.pos < n && s.rerr == nil {
		if s.pos > 0 {
			s.end = copy(s.buf, s.buf[s.pos:s.end])
			s.pos = 0
		}
		m, err := s.r.Read(s.buf[s.end:])
		s.end += m
		if err != nil {
			s.rerr = err
		}
	}
	return s.pos < s.end
}

// eofErr is the error for a body that ends where more was needed.
func (s *jsonScanner) eofErr() error {
	if s.rerr != nil && !errors.Is(s.rerr, io.EOF) {
		return s.rerr
	}
	return io.ErrUnexpectedEOF
}

// next skips white space and consumes the next byte.
func (s *jsonScanner) next() (byte, error) {
	for {
		if s.pos == s.end && !s.fill(1) {
			return 0, s.eofErr()
		}
		c := s.buf[s.pos]
		s.pos++
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return c, nil
		}
	}
}

// atEnd reports whether only white space is left.
func (s *jsonScanner) atEnd() (bool, error) {
	for {
		if s.pos == s.end && !s.fill(1) {
			if s.rerr != nil && !errors.Is(s.rerr, io.EOF) {
				return false, s.rerr
			}
			return true, nil
		}
		switch s.buf[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return false, nil
		}
	}
}

func syntaxErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errSyntax}, args...)...)
}

// member moves to the next member of an object whose '{' was read: it
// reads the separator (none before the first), the key into str and the
// colon. ok is false at the closing brace.
func (s *jsonScanner) member(first bool) (ok bool, err error) {
	c, err := s.next()
	if err != nil {
		return false, err
	}
	if c == '}' && first {
		return false, nil
	}
	if !first {
		if c == '}' {
			return false, nil
		}
		if c != ',' {
			return false, syntaxErr("%q after an object member", c)
		}
		if c, err = s.next(); err != nil {
			return false, err
		}
	}
	if c != '"' {
		return false, syntaxErr("%q where an object key was expected", c)
	}
	if _, err := s.readString(maxKey); err != nil {
		return false, err
	}
	if c, err = s.next(); err != nil {
		return false, err
	}
	if c != ':' {
		return false, syntaxErr("%q after an object key", c)
	}
	return true, nil
}

// maxKey bounds a key we compare; a longer one is none of ours.
const maxKey = 64

// element moves to the next element of an array whose '[' was read and
// returns its first byte. ok is false at the closing bracket.
func (s *jsonScanner) element(first bool) (c byte, ok bool, err error) {
	if c, err = s.next(); err != nil {
		return 0, false, err
	}
	if c == ']' && first {
		return 0, false, nil
	}
	if !first {
		if c == ']' {
			return 0, false, nil
		}
		if c != ',' {
			return 0, false, syntaxErr("%q after an array element", c)
		}
		if c, err = s.next(); err != nil {
			return 0, false, err
		}
	}
	return c, true, nil
}

// readString reads a string whose opening quote was read into str,
// unescaped, keeping at most limit bytes; over says it was longer.
func (s *jsonScanner) readString(limit int) (over bool, err error) {
	s.str = s.str[:0]
	add := func(b ...byte) {
		if len(s.str)+len(b) > limit {
			over = true
			return
		}
		s.str = append(s.str, b...)
	}
	var rb [utf8.UTFMax]byte
	for {
		if s.pos == s.end && !s.fill(1) {
			return over, s.eofErr()
		}
		c := s.buf[s.pos]
		switch {
		case c == '"':
			s.pos++
			return over, nil
		case c < ' ':
			return over, syntaxErr("control character %q in a string", c)
		case c == '\\':
			r, err := s.escape()
			if err != nil {
				return over, err
			}
			add(rb[:utf8.EncodeRune(rb[:], r)]...)
		case c < utf8.RuneSelf:
			s.pos++
			if len(s.str) < limit {
				s.str = append(s.str, c)
			} else {
				over = true
			}
		default:
			s.fill(utf8.UTFMax)
			r, n := utf8.DecodeRune(s.buf[s.pos:s.end])
			s.pos += n
			if r == utf8.RuneError && n == 1 {
				add(rb[:utf8.EncodeRune(rb[:], utf8.RuneError)]...)
				continue
			}
			add(s.buf[s.pos-n : s.pos]...)
		}
	}
}

// escape reads one escape sequence at pos and returns its rune; a
// surrogate pair is one rune, a lone surrogate U+FFFD.
func (s *jsonScanner) escape() (rune, error) {
	s.fill(2)
	if s.end-s.pos < 2 {
		return 0, s.eofErr()
	}
	c := s.buf[s.pos+1]
	s.pos += 2
	switch c {
	case '"', '\\', '/':
		return rune(c), nil
	case 'b':
		return '\b', nil
	case 'f':
		return '\f', nil
	case 'n':
		return '\n', nil
	case 'r':
		return '\r', nil
	case 't':
		return '\t', nil
	case 'u':
	default:
		return 0, syntaxErr("invalid escape \\%c in a string", c)
	}
	r, err := s.hex4()
	if err != nil {
		return 0, err
	}
	if !utf16.IsSurrogate(r) {
		return r, nil
	}
	// A pair only when a \u escape follows that completes it; otherwise
	// the lone half is U+FFFD and what follows is read on its own.
	s.fill(6)
	if s.end-s.pos >= 6 && s.buf[s.pos] == '\\' && s.buf[s.pos+1] == 'u' {
		if r2, ok := hexRune(s.buf[s.pos+2 : s.pos+6]); ok {
			if p := utf16.DecodeRune(r, r2); p != utf8.RuneError {
				s.pos += 6
				return p, nil
			}
		}
	}
	return utf8.RuneError, nil
}

func (s *jsonScanner) hex4() (rune, error) {
	s.fill(4)
	if s.end-s.pos < 4 {
		return 0, s.eofErr()
	}
	r, ok := hexRune(s.buf[s.pos : s.pos+4])
	if !ok {
		return 0, syntaxErr("invalid \\u escape %q in a string", s.buf[s.pos:s.pos+4])
	}
	s.pos += 4
	return r, nil
}

func hexRune(b []byte) (rune, bool) {
	var r rune
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// readNumber reads a number whose first byte c was read into num (at
// most maxNumber bytes; over says it was longer). The grammar is JSON's:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *jsonScanner) readNumber(c byte) (over bool, err error) {
	s.num = append(s.num[:0], c)
	peek := func() (byte, bool) {
		if s.pos == s.end && !s.fill(1) {
			return 0, false
		}
		return s.buf[s.pos], true
	}
	take := func() {
		if len(s.num) < maxNumber {
			s.num = append(s.num, s.buf[s.pos])
		} else {
			over = true
		}
		s.pos++
	}
	digits := func(what string) error {
		n := 0
		for {
			d, ok := peek()
			if !ok || d < '0' || d > '9' {
				break
			}
			take()
			n++
		}
		if n == 0 {
			return syntaxErr("number without digits in its %s", what)
		}
		return nil
	}
	if c == '-' {
		d, ok := peek()
		if !ok || d < '0' || d > '9' {
			return false, syntaxErr("'-' without digits")
		}
		take()
		c = d
	}
	if c != '0' {
		// The first digit was read; more may follow. A leading 0 stands
		// alone.
		if d, ok := peek(); ok && d >= '0' && d <= '9' {
			_ = digits("integer part")
		}
	}
	if d, ok := peek(); ok && d == '.' {
		take()
		if err := digits("fraction"); err != nil {
			return over, err
		}
	}
	if d, ok := peek(); ok && (d == 'e' || d == 'E') {
		take()
		if d, ok := peek(); ok && (d == '+' || d == '-') {
			take()
		}
		if err := digits("exponent"); err != nil {
			return over, err
		}
	}
	return over, nil
}

// literal reads the rest of true, false or null after its first byte c.
func (s *jsonScanner) literal(c byte) error {
	var rest string
	switch c {
	case 't':
		rest = "rue"
	case 'f':
		rest = "alse"
	case 'n':
		rest = "ull"
	default:
		return syntaxErr("unexpected %q", c)
	}
	s.fill(len(rest))
	if s.end-s.pos < len(rest) {
		return s.eofErr()
	}
	if string(s.buf[s.pos:s.pos+len(rest)]) != rest {
		return syntaxErr("invalid literal starting %q", c)
	}
	s.pos += len(rest)
	return nil
}

// null reads null after its first byte 'n'.
func (s *jsonScanner) null() error { return s.literal('n') }

// skip reads past the value whose first byte c was read, checking its
// syntax, holding nothing of it. depth is the number of arrays and
// objects around the value, for the nesting bound.
func (s *jsonScanner) skip(depth int, c byte) error {
	s.open = s.open[:0]
	for {
		switch c {
		case '{', '[':
			if depth+len(s.open) >= maxJSONDepth {
				return syntaxErr("nesting deeper than %d", maxJSONDepth)
			}
			s.open = append(s.open, c)
		case '"':
			if _, err := s.readString(0); err != nil {
				return err
			}
		case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			if _, err := s.readNumber(c); err != nil {
				return err
			}
		default:
			if err := s.literal(c); err != nil {
				return err
			}
		}
		// Close what ends here; find where the next value starts.
		first := c == '{' || c == '['
		for {
			if len(s.open) == 0 {
				return nil
			}
			var (
				ok  bool
				err error
			)
			if s.open[len(s.open)-1] == '{' {
				if ok, err = s.member(first); err == nil && ok {
					c, err = s.next()
				}
			} else {
				c, ok, err = s.element(first)
			}
			if err != nil {
				return err
			}
			if ok {
				break
			}
			s.open = s.open[:len(s.open)-1]
			first = false
		}
	}
}
