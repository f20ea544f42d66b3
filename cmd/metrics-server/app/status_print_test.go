package app

import (
	"bytes"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/kubemetrics/metrics-server/pkg/status"
)

// TestStatusTableLines: the tables of metrics-server status end no line
// with padding (a healthy node's empty LAST ERROR cell, a pod's empty
// message), and counts read in English: "1 node", "1 failure in a row".
func TestStatusTableLines(t *testing.T) {
	now := time.Now()
	ago := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
	healthy := status.Node{Node: "worker-1", Address: "10.12.3.41:10250", Endpoint: "/metrics/resource", Lane: "fast",
		LastAttempt: ago(4 * time.Second), LastSuccess: ago(4 * time.Second), DurationSeconds: 0.0183}
	failingOnce := status.Node{Node: "worker-2", Address: "10.12.3.42:10250", Endpoint: "/metrics/resource", Lane: "fast",
		LastAttempt: ago(3 * time.Second), LastSuccess: ago(18 * time.Second), LastFailure: ago(3 * time.Second),
		DurationSeconds: 0.000142, ConsecutiveFailures: 1, Reason: "connection",
		LastError: `scraping node "worker-2" at 10.12.3.42:10250: dial tcp 10.12.3.42:10250: connect: connection refused`}
	failingLong := failingOnce
	failingLong.ConsecutiveFailures, failingLong.LastSuccess = 4, nil

	tests := []struct {
		name  string
		write func(io.Writer)
		// want are regular expressions each matching a whole line.
		want []string
	}{
		{
			name: "all nodes, one healthy with no error",
			write: func(w io.Writer) {
				writeNodeList(w, &status.NodeList{Total: 2, Failing: 1, Nodes: []status.Node{failingOnce, healthy}}, false)
			},
			want: []string{`^worker-2 +failing \(connection\) +1 +18s ago +142µs +fast +10\.12\.3\.42:10250 +/metrics/resource +dial tcp .*connection refused$`,
				`^worker-1 +ok +0 +4s ago +18ms +fast +10\.12\.3\.41:10250 +/metrics/resource$`,
				`^2 nodes scraped, 1 failing; 2 nodes shown$`},
		},
		{
			name: "the failing node alone",
			write: func(w io.Writer) {
				writeNodeList(w, &status.NodeList{Total: 3, Failing: 1, Nodes: []status.Node{failingOnce}}, true)
			},
			want: []string{`^3 nodes scraped, 1 failing; 1 failing node shown$`},
		},
		{
			name: "one node, truncated",
			write: func(w io.Writer) {
				writeNodeList(w, &status.NodeList{Total: 1, Truncated: true, Nodes: []status.Node{}}, false)
			},
			want: []string{`^1 node scraped, 0 failing; 0 nodes shown \(more with --limit; failing nodes come first\)$`},
		},
		{
			name:  "one healthy node",
			write: func(w io.Writer) { writeNode(w, &healthy) },
			want:  []string{`^Failures in a row: +0$`, `^Endpoint: +/metrics/resource$`},
		},
		{
			name: "a pod on a node failing once, no message",
			write: func(w io.Writer) {
				writePod(w, &status.Pod{Namespace: "shop", Name: "web-7d9f8-x2k4q", Reason: "NotReported", Node: "worker-2", NodeStatus: &failingOnce})
			},
			want: []string{`^Message:$`, `^Node scrapes: +failing \(connection\), last success 18s ago, 1 failure in a row$`},
		},
		{
			name: "a pod on a node failing four times",
			write: func(w io.Writer) {
				writePod(w, &status.Pod{Namespace: "shop", Name: "web-7d9f8-x2k4q", Reason: "NotReported", Message: "no kubelet listed the pod", Node: "worker-2", NodeStatus: &failingLong})
			},
			want: []string{`^Node scrapes: +failing \(connection\), last success never, 4 failures in a row$`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := (&statusOptions{}).print(&b, nil, tt.write); err != nil {
				t.Fatal(err)
			}
			out := b.String()
			for i, l := range strings.Split(out, "\n") {
				if strings.TrimRight(l, " \t") != l {
					t.Errorf("line %d ends with blanks: %q", i+1, l)
				}
			}
			for _, want := range tt.want {
				if !regexp.MustCompile(`(?m)` + want).MatchString(out) {
					t.Errorf("no line matches %s in:\n%s", want, out)
				}
			}
		})
	}
}

// TestSnippetOfCutsOnARune: an error page quoted in an error stays valid
// UTF-8 on one line, however long and wherever its multi-byte runes fall.
func TestSnippetOfCutsOnARune(t *testing.T) {
	for _, pad := range []int{271, 272, 273, 274} {
		body := []byte("<html>\n<title>502</title>\n" + strings.Repeat("x", pad) + strings.Repeat("é", 200))
		got := snippetOf(body)
		if !utf8.ValidString(got) || strings.Contains(got, "\n") || len(got) > 300 {
			t.Errorf("pad %d: snippetOf = %q (%d bytes): want valid UTF-8, one line, at most 300 bytes", pad, got, len(got))
		}
	}
}
