package chart

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/kubemetrics/metrics-server/manifests"
)

// TestShutdownDelayWithReplicas: with more than one replica the chart gives
// the server the shutdown delay the high-availability component gives it
// (a terminating replica keeps serving while its endpoint's removal
// propagates), once, unless args already set one; one replica gets none.
func TestShutdownDelayWithReplicas(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []string
		want   string // the flag's value; "" means not set
	}{
		{"one replica", nil, ""},
		{"two replicas", []string{"replicas=2"}, "5s"},
		{"two replicas, own delay", []string{"replicas=2", "args[0]=--shutdown-delay-duration=12s"}, "12s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := deployment(t, mustRender(t, tc.values...))
			n := 0
			for _, a := range d.Spec.Template.Spec.Containers[0].Args {
				if strings.HasPrefix(a, "--shutdown-delay-duration") {
					n++
				}
			}
			got := flagValues(t, d)["shutdown-delay-duration"]
			if tc.want == "" {
				if n != 0 {
					t.Errorf("%d --shutdown-delay-duration flags, want none", n)
				}
				return
			}
			if n != 1 || got != tc.want {
				t.Errorf("%d --shutdown-delay-duration flags, value %q; want one, %q", n, got, tc.want)
			}
		})
	}
}

// requiredAntiAffinity is the affinity values.yaml shows for two replicas
// on different nodes, as a --set-json flag.
const requiredAntiAffinity = `--set-json=affinity={"podAntiAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":[{"labelSelector":{"matchLabels":{"app.kubernetes.io/name":"metrics-server"}},"topologyKey":"kubernetes.io/hostname"}]}}`

// TestRolloutNeedsNoSecondNode: every value set whose pods each need a node
// of their own (hostNetwork, where the port is the node's; a required
// anti-affinity by hostname) renders a rollout without a surge pod
// (maxSurge resolves to 0, maxUnavailable to at least 1), so no rollout
// needs a node with a second free port or no replica: on a cluster with as
// many eligible nodes as replicas the surge pod would stay Pending and,
// with maxUnavailable 0, the rollout would wait forever (test/e2erollout
// shows it with the real scheduler). Pods that can share a node keep the
// base's strategy, every replica kept until its replacement is ready; an
// updateStrategy given is rendered as given.
func TestRolloutNeedsNoSecondNode(t *testing.T) {
	for _, tc := range []struct {
		name    string
		values  []string
		ownNode bool
		// want is the strategy when the chart chooses it.
		want string
	}{
		{"defaults", nil, false, "maxUnavailable 0"},
		{"two replicas", []string{"replicas=2", "podDisruptionBudget.enabled=true"}, false, "maxUnavailable 0"},
		{"hostNetwork", []string{"hostNetwork.enabled=true"}, true, "no surge"},
		{"hostNetwork, two replicas", []string{"hostNetwork.enabled=true", "replicas=2", "podDisruptionBudget.enabled=true"}, true, "no surge"},
		{"hostNetwork, three replicas, own port", []string{"hostNetwork.enabled=true", "replicas=3", "containerPort=8443"}, true, "no surge"},
		{"two replicas, required anti-affinity", []string{"replicas=2", "podDisruptionBudget.enabled=true", requiredAntiAffinity}, true, "no surge"},
		{"hostNetwork, updateStrategy given", []string{"hostNetwork.enabled=true", "updateStrategy.type=Recreate"}, true, "Recreate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := deployment(t, mustRender(t, tc.values...))
			why := manifests.OwnNode(d)
			if tc.ownNode != (why != "") {
				t.Fatalf("each pod needs a node of its own: %t (%q), want %t", why != "", why, tc.ownNode)
			}
			s := d.Spec.Strategy
			switch tc.want {
			case "Recreate":
				if s.Type != appsv1.RecreateDeploymentStrategyType || s.RollingUpdate != nil {
					t.Errorf("strategy %+v, want the given Recreate", s)
				}
			case "maxUnavailable 0":
				if s.RollingUpdate == nil || s.RollingUpdate.MaxUnavailable == nil || s.RollingUpdate.MaxUnavailable.String() != "0" || s.RollingUpdate.MaxSurge != nil {
					t.Errorf("strategy %+v, want the base's: maxUnavailable 0, the default surge", s)
				}
			}
			if why == "" {
				return
			}
			if err := manifests.RollsOutInPlace(d); err != nil {
				t.Errorf("%s: %v", why, err)
			}
		})
	}
}

// TestRefusedUpdateStrategy: a misspelled or mistyped updateStrategy fails
// the render naming it, instead of rendering a strategy the API refuses or
// silently defaults (a misspelled maxSurge would leave the 25% surge).
func TestRefusedUpdateStrategy(t *testing.T) {
	for _, tc := range []struct {
		values []string
		want   string
	}{
		{[]string{"updateStrategy.type=Rolling"}, "/updateStrategy/type"},
		{[]string{"updateStrategy.rollingUpdate.maxSurg=0"}, "maxSurg"},
		{[]string{"updateStrategy.rollingUpdate.maxSurge=1x"}, "/updateStrategy/rollingUpdate/maxSurge"},
		{[]string{"updateStrategy.rollingUpdate.maxUnavailable=-1"}, "/updateStrategy/rollingUpdate/maxUnavailable"},
	} {
		t.Run(strings.Join(tc.values, " "), func(t *testing.T) {
			_, err := render(t, tc.values...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one naming %q", err, tc.want)
			}
		})
	}
	for _, ok := range [][]string{
		{"updateStrategy.type=Recreate"},
		{"updateStrategy.rollingUpdate.maxSurge=25%", "updateStrategy.rollingUpdate.maxUnavailable=0"},
		{"updateStrategy.rollingUpdate.maxSurge=0", "updateStrategy.rollingUpdate.maxUnavailable=1"},
	} {
		if _, err := render(t, ok...); err != nil {
			t.Errorf("%v: %v", ok, err)
		}
	}
}
