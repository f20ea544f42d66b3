package doctor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/kubemetrics/metrics-server/pkg/excerpt"
)

// WriteTable prints findings for people: one row per finding (check,
// target, status, message), the fix and, for what is not ok, the raw
// detail on lines of their own below it, then a count by status.
func WriteTable(w io.Writer, findings []Finding) error {
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tTARGET\tSTATUS\tMESSAGE")
	counts := map[Status]int{}
	for _, f := range findings {
		counts[f.Status]++
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Check, f.Target, strings.ToUpper(string(f.Status)), excerpt.Flatten(f.Message))
		if f.Fix != "" {
			fmt.Fprintf(tw, "\t\t\tfix: %s\n", excerpt.Flatten(f.Fix))
		}
		if f.Detail != "" && f.Status != StatusOK {
			fmt.Fprintf(tw, "\t\t\tdetail: %s\n", excerpt.Flatten(f.Detail))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// tabwriter pads a cell followed by an empty last one to its column's
	// width; no line ends with that padding.
	lines := strings.Split(b.String(), "\n")
	for i, line := range lines {
		lines[i] = strings.TrimRight(line, " ")
	}
	if _, err := io.WriteString(w, strings.Join(lines, "\n")); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%d ok, %d warn, %d fail\n", counts[StatusOK], counts[StatusWarn], counts[StatusFail])
	return err
}

// WriteJSON prints findings for machines: {"findings": [...], "failed": bool}.
func WriteJSON(w io.Writer, findings []Finding) error {
	if findings == nil {
		findings = []Finding{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Findings []Finding `json:"findings"`
		Failed   bool      `json:"failed"`
	}{findings, Failed(findings)})
}
