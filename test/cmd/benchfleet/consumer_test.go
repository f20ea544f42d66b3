package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

func TestRunPerNodeGets(t *testing.T) {
	names := make([]string, 40)
	for i := range names {
		names[i] = fmt.Sprintf("node-%02d", i)
	}
	for _, tc := range []struct {
		name                string
		delay               time.Duration
		workers             int
		failing             string
		burn                time.Duration // CPU spent by each get, for the CPU figure
		wantLate, wantRound bool          // wantRound: every round asked every node once
	}{
		{name: "fast answers: every node once a round, none late", workers: 4, failing: "node-07", burn: time.Millisecond, wantRound: true},
		// 40 GETs of 20 ms on one worker need 800 ms, four times the
		// 200 ms period: each round hands out its last request late.
		{name: "slow answers: rounds run late", delay: 20 * time.Millisecond, workers: 1, wantLate: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			asked := map[string]int{}
			var times []time.Time
			get := func(ctx context.Context, name string) error {
				time.Sleep(tc.delay)
				if tc.burn > 0 {
					for t0 := time.Now(); time.Since(t0) < tc.burn; {
					}
				}
				mu.Lock()
				defer mu.Unlock()
				asked[name]++
				times = append(times, time.Now())
				if name == tc.failing {
					return errors.New("refused")
				}
				return nil
			}
			p := consumerPlan{names: names, period: 200 * time.Millisecond, window: time.Second, workers: tc.workers, get: get, serverPID: os.Getpid()}
			l := runPerNodeGets(context.Background(), p)
			if l.Rounds < 2 {
				t.Fatalf("%d rounds in a 1 s window of 200 ms periods", l.Rounds)
			}
			if l.Requests != l.Rounds*len(names) {
				t.Errorf("%d requests in %d rounds of %d nodes", l.Requests, l.Rounds, len(names))
			}
			if got := l.WantPerSecond; got != 200 {
				t.Errorf("wanted rate %v, want 200 a second", got)
			}
			if tc.wantRound {
				for _, n := range names {
					if asked[n] != l.Rounds {
						t.Errorf("%s asked %d times in %d rounds", n, asked[n], l.Rounds)
					}
				}
				if l.Errors != l.Rounds {
					t.Errorf("%d errors, want one a round (%s refused)", l.Errors, tc.failing)
				}
				if l.LateRounds != 0 {
					t.Errorf("%d late rounds with instant answers", l.LateRounds)
				}
				// Spread over the period, not sent in one burst: the
				// 40 requests of a round span most of its 200 ms.
				if span := times[len(names)-1].Sub(times[0]); span < 150*time.Millisecond {
					t.Errorf("the first round's requests span %v, want them spread over the 200 ms period", span)
				}
				if l.PerSecond < 100 || l.PerSecond > 260 {
					t.Errorf("achieved %.0f requests a second, want about 200", l.PerSecond)
				}
				// 1 ms of CPU a request, 200 a second: about 12 CPU s/min.
				if l.ServerCPUSecondsPerMinute < 3 {
					t.Errorf("%.2f CPU s/min measured for pid %d, want about 12", l.ServerCPUSecondsPerMinute, p.serverPID)
				}
			}
			if tc.wantLate {
				if l.LateRounds == 0 {
					t.Errorf("no late round with 800 ms of GETs a 200 ms period")
				}
				if l.P50 < 20 {
					t.Errorf("p50 %.1f ms below the 20 ms each answer took", l.P50)
				}
			}
		})
	}
}

func TestRunPerNodeGetsStopsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var once sync.Once
	get := func(context.Context, string) error {
		once.Do(cancel)
		return nil
	}
	done := make(chan ConsumerLoad)
	go func() {
		done <- runPerNodeGets(ctx, consumerPlan{names: []string{"a", "b", "c"}, period: time.Second, window: time.Hour, workers: 2, get: get})
	}()
	select {
	case l := <-done:
		if l.Rounds != 1 {
			t.Errorf("%d rounds after the context ended in the first", l.Rounds)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("still running 5 s after its context ended")
	}
}

func TestCheckOursHoldsTheConsumerPattern(t *testing.T) {
	good := func() Result {
		r := Result{Name: "kubemetrics", Nodes: 2, Cycles: 3, KubeletRequestsMinMaxPerNode: [2]int{3, 3}, CycleMax: 1, List: map[string]Latency{}}
		for _, k := range listKeys {
			r.List[k] = Latency{N: 20}
		}
		return r
	}
	for _, tc := range []struct {
		name     string
		consumer *ConsumerLoad
		wantErr  bool
	}{
		{name: "no consumer run", consumer: nil},
		{name: "every GET answered", consumer: &ConsumerLoad{Requests: 40}},
		{name: "a GET failed", consumer: &ConsumerLoad{Requests: 40, Errors: 1}, wantErr: true},
		{name: "no GET made", consumer: &ConsumerLoad{}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := good()
			r.Consumer = tc.consumer
			if err := checkOurs(r); (err != nil) != tc.wantErr {
				t.Errorf("checkOurs: %v, want an error: %v", err, tc.wantErr)
			}
		})
	}
}
