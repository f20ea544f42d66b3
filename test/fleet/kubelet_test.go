package fleet

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestAcceptsGzip(t *testing.T) {
	for _, tt := range []struct {
		values []string
		want   bool
	}{
		{nil, false},
		{[]string{"gzip"}, true},
		{[]string{"identity"}, false},
		{[]string{"deflate, GZIP;q=0.5"}, true},
		{[]string{"gzip;q=0"}, false},
		{[]string{"gzip; q=0.0", "br"}, false},
		{[]string{"br", "gzip"}, true},
		{[]string{"gzipx"}, false},
	} {
		if got := acceptsGzip(tt.values); got != tt.want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", tt.values, got, tt.want)
		}
	}
}

func TestWriteMaybeGzip(t *testing.T) {
	body := bytes.Repeat([]byte("container_cpu_usage_seconds_total{} 1 2\n"), 100)
	for _, enc := range []string{"", "gzip"} {
		r := httptest.NewRequest(http.MethodGet, "/metrics/resource", nil)
		if enc != "" {
			r.Header.Set("Accept-Encoding", enc)
		}
		w := httptest.NewRecorder()
		writeMaybeGzip(w, r, body)
		got := w.Body.Bytes()
		if w.Header().Get("Content-Encoding") != enc {
			t.Fatalf("Accept-Encoding %q: Content-Encoding %q", enc, w.Header().Get("Content-Encoding"))
		}
		if enc == "gzip" {
			zr, err := gzip.NewReader(bytes.NewReader(got))
			if err != nil {
				t.Fatal(err)
			}
			if got, err = io.ReadAll(zr); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(got, body) {
			t.Errorf("Accept-Encoding %q: body differs after decoding", enc)
		}
	}
}
