package options

import (
	"bytes"
	"io"
	"os"
	"regexp"
	"sync"

	logsapi "k8s.io/component-base/logs/api/v1"
)

// ApplyLogging applies the logging flags to the process, logging to
// standard output and error. Call it once, after Validate passed.
func (o *Options) ApplyLogging() error {
	return o.ApplyLoggingTo(os.Stdout, os.Stderr)
}

// ApplyLoggingTo is ApplyLogging with the streams given: info to stdout
// (with --log-text-split-stream), everything else to stderr. Both are
// wrapped in a redactingWriter. It can be applied once per process.
func (o *Options) ApplyLoggingTo(stdout, stderr io.Writer) error {
	return logsapi.ValidateAndApplyWithOptions(o.Logging, &logsapi.LoggingOptions{
		InfoStream:  newRedactingWriter(stdout),
		ErrorStream: newRedactingWriter(stderr),
	}, nil)
}

// tokenValue matches the value of a JSON "token" field, written plainly (the
// text format) or escaped inside a JSON log entry. From -v=8 on, client-go
// logs the body of every request and response it makes, and the body of a
// TokenReview (the server's delegated authentication of a bearer token)
// holds that token in spec.token, in the request and again in the answer.
// client-go masks the Authorization header, not bodies, and the token
// authenticator detaches its context, so no logger of ours can be handed to
// that request: the log stream is the one place left to mask it.
var tokenValue = regexp.MustCompile(`(\\?"token\\?"\s*:\s*\\?")(?:[^"\\]|\\[^"])*(\\?")`)

// redactingWriter writes log output with the value of every JSON "token"
// field masked. It works on whole lines (an entry's body is one line in both
// the text and the JSON format), holding an unfinished line back until its
// end is written. Safe for concurrent use.
type redactingWriter struct {
	mu  sync.Mutex
	out io.Writer
	// part is the start of a line whose end has not been written yet.
	part []byte
}

func newRedactingWriter(out io.Writer) *redactingWriter {
	return &redactingWriter{out: out}
}

func (w *redactingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	data := p
	if len(w.part) > 0 {
		data = append(w.part, p...)
		w.part = nil
	}
	end := bytes.LastIndexByte(data, '\n') + 1
	if end < len(data) {
		w.part = append([]byte(nil), data[end:]...)
	}
	if end == 0 {
		return len(p), nil
	}
	if _, err := w.out.Write(redact(data[:end])); err != nil {
		return 0, err
	}
	return len(p), nil
}

var tokenKey = []byte(`token`)

func redact(b []byte) []byte {
	if !bytes.Contains(b, tokenKey) {
		return b
	}
	return tokenValue.ReplaceAll(b, []byte(`${1}<masked>${2}`))
}
