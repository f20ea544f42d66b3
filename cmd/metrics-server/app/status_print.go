package app

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/kubemetrics/metrics-server/pkg/excerpt"
	"github.com/kubemetrics/metrics-server/pkg/status"
)

// tableErrorBytes bounds a node's error in the node table; status NODE
// prints it whole.
const tableErrorBytes = 160

// writeNodeList writes the nodes as a table, then a summary line.
func writeNodeList(w io.Writer, list *status.NodeList, failingOnly bool) {
	fmt.Fprintln(w, "NODE\tSTATE\tFAILURES\tLAST SUCCESS\tDURATION\tLANE\tADDRESS\tENDPOINT\tLAST ERROR")
	for i := range list.Nodes {
		n := &list.Nodes[i]
		lastErr := ""
		if n.Failing() {
			lastErr = excerpt.OneLine(withoutWhere(n), tableErrorBytes)
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Node, state(n), n.ConsecutiveFailures, ago(n.LastSuccess),
			seconds(n.DurationSeconds), n.Lane, orDash(n.Address), orDash(n.Endpoint), lastErr)
	}
	shown := counted(len(list.Nodes), "node", "nodes")
	if failingOnly {
		shown = counted(len(list.Nodes), "failing node", "failing nodes")
	}
	fmt.Fprintf(w, "\n%s scraped, %d failing; %s shown", counted(list.Total, "node", "nodes"), list.Failing, shown)
	if list.Truncated {
		fmt.Fprint(w, " (more with --limit; failing nodes come first)")
	}
	fmt.Fprintln(w)
}

// withoutWhere is the node's error without the node, address and endpoint
// it starts with (the kubelet client's "scraping node ... at ...: "),
// which the row's other cells give.
func withoutWhere(n *status.Node) string {
	for _, where := range []string{
		fmt.Sprintf("scraping node %q at %s %s: ", n.Node, n.Address, n.Endpoint),
		fmt.Sprintf("scraping node %q at %s: ", n.Node, n.Address),
	} {
		if rest, ok := strings.CutPrefix(n.LastError, where); ok {
			return rest
		}
	}
	return n.LastError
}

// writeNode writes one node as "key: value" lines, its error whole.
func writeNode(w io.Writer, n *status.Node) {
	fmt.Fprintf(w, "Node:\t%s\n", n.Node)
	fmt.Fprintf(w, "State:\t%s\n", state(n))
	fmt.Fprintf(w, "Address:\t%s\n", orDash(n.Address))
	fmt.Fprintf(w, "Endpoint:\t%s\n", orDash(n.Endpoint))
	fmt.Fprintf(w, "Lane:\t%s\n", n.Lane)
	fmt.Fprintf(w, "Last attempt:\t%s\n", at(n.LastAttempt))
	fmt.Fprintf(w, "Last success:\t%s\n", at(n.LastSuccess))
	fmt.Fprintf(w, "Duration:\t%s\n", seconds(n.DurationSeconds))
	fmt.Fprintf(w, "Failures in a row:\t%d\n", n.ConsecutiveFailures)
	if n.SkippedCycles > 0 {
		fmt.Fprintf(w, "Cycles skipped:\t%d (its previous request was still in flight)\n", n.SkippedCycles)
	}
	if n.LastError != "" {
		fmt.Fprintf(w, "Last failure:\t%s\n", at(n.LastFailure))
		fmt.Fprintf(w, "Last error:\t%s\n", excerpt.OneLine(n.LastError, status.MaxErrorBytes))
	}
}

// writePod writes a pod's answer, with its node's status when given.
func writePod(w io.Writer, p *status.Pod) {
	served := "no"
	if p.Served {
		served = "yes"
	}
	fmt.Fprintf(w, "Pod:\t%s/%s\n", p.Namespace, p.Name)
	fmt.Fprintf(w, "Served:\t%s\n", served)
	fmt.Fprintf(w, "Reason:\t%s\n", p.Reason)
	fmt.Fprintf(w, "Message:\t%s\n", p.Message)
	if p.Node != "" {
		fmt.Fprintf(w, "Node:\t%s\n", p.Node)
	}
	if p.Container != "" {
		fmt.Fprintf(w, "Container:\t%s\n", p.Container)
	}
	if n := p.NodeStatus; n != nil {
		fmt.Fprintf(w, "Node scrapes:\t%s, last success %s, %s in a row\n", state(n), ago(n.LastSuccess),
			counted(n.ConsecutiveFailures, "failure", "failures"))
		if n.Failing() {
			fmt.Fprintf(w, "Node error:\t%s\n", excerpt.OneLine(n.LastError, status.MaxErrorBytes))
		}
	}
}

// state is "ok", "failing (reason)" or "not tried yet".
func state(n *status.Node) string {
	switch {
	case n.Failing():
		return "failing (" + n.Reason + ")"
	case n.LastAttempt == nil:
		return "not tried yet"
	}
	return "ok"
}

func ago(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return time.Since(*t).Truncate(time.Second).String() + " ago"
}

func at(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.Format(time.RFC3339) + " (" + ago(t) + ")"
}

// seconds renders a request's duration: to the millisecond, or to the
// microsecond under one (a refused connection takes a tenth of one).
func seconds(s float64) string {
	d := time.Duration(s * float64(time.Second))
	if d < time.Millisecond {
		return d.Round(time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// counted is n with the noun in its number: "1 node", "0 nodes", "2 nodes".
func counted(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// trimLineEnds drops the blanks that end each line of a table: tabwriter
// pads a cell followed by an empty last one (a healthy node's LAST ERROR)
// to its column's width.
func trimLineEnds(b []byte) []byte {
	lines := bytes.Split(b, []byte("\n"))
	for i, l := range lines {
		lines[i] = bytes.TrimRight(l, " \t")
	}
	return bytes.Join(lines, []byte("\n"))
}
