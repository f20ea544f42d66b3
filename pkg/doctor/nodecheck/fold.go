package nodecheck

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/kubemetrics/metrics-server/pkg/doctor"
)

// namesShown is how many node names a folded finding lists.
const namesShown = 5

// fold turns the results of total checked nodes into findings. With
// in.Detail every result is its own finding. Otherwise results that are
// not ok stay one per node when total is at most in.ListUpTo, and the rest
// are folded: one finding per check, status and cause, counting and naming
// the nodes ("412 of 5,000 nodes: ..."). A fold of one node is that node's
// own finding. Findings come in check order, failures first.
func fold(perNode [][]result, total int, in Input) []doctor.Finding {
	type key struct {
		check  string
		status doctor.Status
		cause  string
	}
	var (
		out    []doctor.Finding
		groups = map[key][]result{}
		order  []key
	)
	listEach := in.Detail || total <= in.ListUpTo
	for _, rs := range perNode {
		for _, r := range rs {
			if in.Detail || listEach && r.Status != doctor.StatusOK {
				out = append(out, r.Finding)
				continue
			}
			k := key{r.Check, r.Status, r.cause}
			if _, ok := groups[k]; !ok {
				order = append(order, k)
			}
			groups[k] = append(groups[k], r)
		}
	}
	for _, k := range order {
		g := groups[k]
		if len(g) == 1 {
			out = append(out, g[0].Finding)
			continue
		}
		names := make([]string, 0, namesShown)
		for _, r := range g[:min(len(g), namesShown)] {
			names = append(names, r.node)
		}
		list := strings.Join(names, ", ")
		if len(g) > namesShown {
			list += fmt.Sprintf(" and %s more", count(len(g)-namesShown))
		}
		f := doctor.Finding{
			Check:   k.check,
			Target:  "nodes",
			Status:  k.status,
			Message: fmt.Sprintf("%s of %s nodes: %s (%s)", count(len(g)), count(total), k.cause, list),
			Fix:     g[0].Fix,
			Detail:  fmt.Sprintf("%s: %s", g[0].Target, g[0].Message),
		}
		if k.status == doctor.StatusOK {
			f.Detail = ""
		}
		out = append(out, f)
	}
	out = append(out, clockHint(perNode, in)...)
	out = append(out, connectHint(perNode)...)
	rank := func(s doctor.Status) int {
		switch s {
		case doctor.StatusFail:
			return 0
		case doctor.StatusWarn:
			return 1
		}
		return 2
	}
	slices.SortStableFunc(out, func(a, b doctor.Finding) int {
		if c := slices.Index(checkOrder, a.Check) - slices.Index(checkOrder, b.Check); c != 0 {
			return c
		}
		return rank(a.Status) - rank(b.Status)
	})
	return out
}

// clockHint says that this machine's clock is the likely culprit when at
// least two nodes were compared and every one is off in the same
// direction.
func clockHint(perNode [][]result, in Input) []doctor.Finding {
	var compared, ahead, behind int
	for _, rs := range perNode {
		for _, r := range rs {
			if r.Check != CheckClock {
				continue
			}
			compared++
			switch {
			case r.Status == doctor.StatusOK:
			case strings.Contains(r.cause, "ahead"):
				ahead++
			default:
				behind++
			}
		}
	}
	if compared < 2 || (ahead != compared && behind != compared) {
		return nil
	}
	dir := "ahead of"
	if behind == compared {
		dir = "behind"
	}
	return []doctor.Finding{{
		Check: CheckClock, Target: "this machine", Status: doctor.StatusWarn,
		Message: fmt.Sprintf("the clocks of all %s nodes compared are more than %v %s this machine's: this machine's clock is probably the one that is off", count(compared), in.SkewWarn, dir),
		Fix:     "sync this machine's clock (NTP) and run doctor again",
	}}
}

// connectHint says that this machine may be outside the nodes' network
// when at least two nodes were dialled and not one accepted: every
// kubelet down at once is less likely than a doctor run from a laptop.
func connectHint(perNode [][]result) []doctor.Finding {
	var dialled, failed int
	for _, rs := range perNode {
		for _, r := range rs {
			if r.Check != CheckConnect {
				continue
			}
			dialled++
			if r.Status == doctor.StatusFail {
				failed++
			}
		}
	}
	if dialled < 2 || failed != dialled {
		return nil
	}
	return []doctor.Finding{{
		Check: CheckConnect, Target: "this machine", Status: doctor.StatusWarn,
		Message: fmt.Sprintf("not one of the %s kubelets dialled accepts connections from this machine: if kubectl top works, this machine is outside the nodes' network rather than every kubelet down", count(dialled)),
		Fix:     "run doctor where the server runs: on a node, or in a pod of the cluster",
	}}
}

// count writes n with thousands separators: 5,000.
func count(n int) string {
	if n < 0 {
		return "-" + count(-n)
	}
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
