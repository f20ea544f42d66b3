package app

import (
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/component-base/logs"
	"k8s.io/klog/v2"

	"github.com/kubemetrics/metrics-server/cmd/metrics-server/app/options"
)

// TestNoSecretsInLogsAtV10 runs the server at the highest verbosity
// through start-up, kubelet scrapes (with the kubelet bearer token), API
// requests by token, by the front proxy's certificate and by forged
// headers, and shutdown, then searches everything klog wrote for every
// token and every private key of the run: verbatim, as a PEM body, line by
// line of that body, and inside hex dumps (client-go logs binary bodies that
// way).
func TestNoSecretsInLogsAtV10(t *testing.T) {
	logged := captureLogs(t, 10)
	s := startSecureServer(t)

	waitFor(t, 30*time.Second, func() error {
		code, body := s.call(t, caller{token: aliceToken}, http.MethodGet, "/apis/metrics.k8s.io/v1beta1/namespaces/ns1/pods/db-0", "")
		if code != http.StatusOK {
			return fmt.Errorf("pod metrics: %d %.300s", code, body)
		}
		return nil
	})
	for _, c := range []caller{
		{token: aliceToken},
		{token: nobodyToken},
		{token: unknownToken},
		{cert: frontProxy(t, s.files), headers: map[string]string{"X-Remote-User": userAlice}},
		{headers: forgedHeaders},
	} {
		for _, path := range []string{"/apis/metrics.k8s.io/v1/nodes", "/apis/metrics.k8s.io/v1/namespaces/ns1/pods", "/metrics"} {
			s.call(t, c, http.MethodGet, path, "")
		}
	}
	s.Stop()
	klog.Flush()
	out := logged.String()

	// The log must have seen what it could leak, or the search below
	// proves nothing.
	for _, evidence := range []string{
		"/metrics/resource",              // kubelet requests
		"tokenreviews",                   // token reviews, whose bodies carry tokens
		"subjectaccessreviews",           // access reviews
		"Authorization: Bearer <masked>", // client-go's header dump at -v=9 and up
	} {
		if !strings.Contains(out, evidence) {
			t.Errorf("the -v=10 log never mentions %q; the search for secrets would prove nothing (%d bytes logged)", evidence, len(out))
		}
	}

	secrets := map[string]string{
		"kubelet token":          kubeletSecretToken,
		"delegation token":       authAPIToken,
		"granted user's token":   aliceToken,
		"ungranted user's token": nobodyToken,
		"unknown token":          unknownToken,
		"PEM private key header": "PRIVATE KEY",
	}
	keys, err := filepath.Glob(s.files.Path("*.key"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range keys {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := pemBodyLines(string(b))
		secrets[filepath.Base(f)+" base64 body"] = strings.Join(lines, "")
		for i, l := range lines {
			secrets[fmt.Sprintf("%s base64 line %d", filepath.Base(f), i+1)] = l
		}
	}
	dumped := hexDumpText(out)
	for what, secret := range secrets {
		if i := strings.Index(out, secret); i >= 0 {
			t.Errorf("the -v=10 log holds the %s, at:\n%s", what, around(out, i))
		}
		if i := strings.Index(dumped, secret); i >= 0 {
			t.Errorf("a hex dump in the -v=10 log holds the %s, in:\n%s", what, around(dumped, i))
		}
	}
}

// TestHexDumpTextRejoinsSplitText holds the search above to what it claims:
// text that a hex dump splits over lines is found whole.
func TestHexDumpTextRejoinsSplitText(t *testing.T) {
	body := append([]byte("k8s\x00\n\x1a"), `{"spec":{"token":"`+aliceToken+`"}}`...)
	if got := hexDumpText(hex.Dump(body)); !strings.Contains(got, aliceToken) {
		t.Errorf("hexDumpText(hex.Dump(body)) = %q, want it to contain %q", got, aliceToken)
	}
	indented := "\t" + strings.ReplaceAll(hex.Dump(body), "\n", "\n\t")
	if got := hexDumpText(indented); !strings.Contains(got, aliceToken) {
		t.Errorf("as klog indents a multi-line value: %q, want it to contain %q", got, aliceToken)
	}
}

// pemBodyLines returns the base64 lines of every PEM block in s.
func pemBodyLines(s string) []string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "-----") {
			lines = append(lines, l)
		}
	}
	return lines
}

// hexDumpLine is a line of encoding/hex's Dump: offset, up to 16 bytes in
// hex, and their printable text between bars.
var hexDumpLine = regexp.MustCompile(`^[0-9a-f]{8}  (?:[0-9a-f]{2} {1,2}| {3,4})+ *\|(.*)\|$`)

// hexDumpText joins the text columns of consecutive hex dump lines in s, so
// a token split across dump lines reads whole again.
func hexDumpText(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if m := hexDumpLine.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
			b.WriteString(m[1])
		} else {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func around(s string, i int) string {
	return s[max(0, i-300):min(len(s), i+300)]
}

// syncBuffer is a strings.Builder safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// switchWriter writes to whatever it was last pointed at.
type switchWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *switchWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *switchWriter) set(w io.Writer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.w = w
}

// processLog is where the process logs: stderr, or a test's buffer while
// it captures the log.
var processLog = &switchWriter{w: os.Stderr}

// TestMain applies the logging flags the way the command does, once and
// before any test starts goroutines that log (klog's logger may be replaced
// only while nothing logs), with the log led through processLog.
func TestMain(m *testing.M) {
	if err := options.NewOptions().ApplyLoggingTo(processLog, processLog); err != nil {
		fmt.Fprintln(os.Stderr, "applying the logging flags:", err)
		os.Exit(2)
	}
	os.Exit(m.Run())
}

// captureLogs raises the verbosity to v and leads the process's log into
// the returned buffer until the test ends. Call it before starting anything
// that logs, so its cleanup runs after theirs.
func captureLogs(t *testing.T, v int) *syncBuffer {
	t.Helper()
	was := currentVerbosity()
	buf := &syncBuffer{}
	processLog.set(buf)
	if _, err := logs.GlogSetter(strconv.Itoa(v)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		klog.Flush()
		if _, err := logs.GlogSetter(was); err != nil {
			t.Error(err)
		}
		processLog.set(os.Stderr)
	})
	return buf
}
