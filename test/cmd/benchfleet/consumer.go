package main

import (
	"context"
	"sort"
	"sync"
	"time"
)

// ConsumerLoad is what a consumer's request pattern cost while it ran
// against a server through the kube-apiserver: the descheduler's
// LowNodeUtilization with metrics reads one NodeMetrics per node, every
// node, every 5 s (its metrics collector: a NonSlidingUntil loop of a node
// list and a GET per node).
type ConsumerLoad struct {
	Pattern       string
	PeriodSeconds float64
	WindowSeconds float64
	// Rounds started in the window; LateRounds did not finish within their
	// period, so the next began late, as NonSlidingUntil does.
	Rounds, LateRounds int
	Requests, Errors   int
	// PerSecond is the rate achieved; WantPerSecond the pattern's
	// (nodes / period).
	PerSecond, WantPerSecond float64
	// P50 and P99 of the GETs, milliseconds.
	P50, P99 float64
	// CPU of the server and of the kube-apiserver over the window.
	ServerCPUSecondsPerMinute    float64
	APIServerCPUSecondsPerMinute float64
}

// consumerPlan is one run of a per-node pattern.
type consumerPlan struct {
	names          []string
	period, window time.Duration
	// workers bounds the GETs in flight: a round's requests are spread
	// evenly over the period and wait for a free worker when the answers
	// are slower than that.
	workers int
	get     func(ctx context.Context, name string) error
	// pids whose CPU is measured over the window (0: not measured).
	serverPID, apiserverPID int
}

// runPerNodeGets issues one get per name per period, each round's requests
// spread evenly over the period, until the window ends (the last round
// finishes first). A round that takes longer than the period starts the
// next one at once.
func runPerNodeGets(ctx context.Context, p consumerPlan) ConsumerLoad {
	l := ConsumerLoad{Pattern: "GET nodes/<name>, every node each period", PeriodSeconds: p.period.Seconds(),
		WantPerSecond: float64(len(p.names)) / p.period.Seconds()}
	if len(p.names) == 0 || p.period <= 0 || p.window <= 0 {
		return l
	}
	workers := max(1, p.workers)
	var srv0, api0 uint64
	if p.serverPID > 0 {
		srv0, _ = cpuTicks(p.serverPID)
	}
	if p.apiserverPID > 0 {
		api0, _ = cpuTicks(p.apiserverPID)
	}
	var (
		mu   sync.Mutex
		durs []float64
		errs int
	)
	jobs := make(chan string)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for name := range jobs {
				t := time.Now()
				err := p.get(ctx, name)
				d := float64(time.Since(t).Microseconds()) / 1000
				mu.Lock()
				durs = append(durs, d)
				if err != nil {
					errs++
				}
				mu.Unlock()
			}
		})
	}
	began := time.Now()
	step := p.period / time.Duration(len(p.names))
	for ctx.Err() == nil && time.Since(began) < p.window {
		round := time.Now()
		l.Rounds++
		for i, name := range p.names {
			if wait := time.Until(round.Add(time.Duration(i) * step)); wait > 0 {
				select {
				case <-ctx.Done():
				case <-time.After(wait):
				}
			}
			if ctx.Err() != nil {
				break
			}
			select {
			case jobs <- name:
			case <-ctx.Done():
			}
		}
		// The round is over when its last request was handed out; its
		// answers may still be on their way, as in a pool of GETs.
		if rest := time.Until(round.Add(p.period)); rest > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(rest):
			}
		} else {
			l.LateRounds++
		}
	}
	close(jobs)
	wg.Wait()
	elapsed := time.Since(began)
	l.WindowSeconds = elapsed.Seconds()
	if p.serverPID > 0 {
		if t, err := cpuTicks(p.serverPID); err == nil {
			l.ServerCPUSecondsPerMinute = float64(t-srv0) / clockTicks / elapsed.Minutes()
		}
	}
	if p.apiserverPID > 0 {
		if t, err := cpuTicks(p.apiserverPID); err == nil {
			l.APIServerCPUSecondsPerMinute = float64(t-api0) / clockTicks / elapsed.Minutes()
		}
	}
	l.Requests, l.Errors = len(durs), errs
	l.PerSecond = float64(len(durs)) / elapsed.Seconds()
	if len(durs) > 0 {
		sort.Float64s(durs)
		l.P50, l.P99 = durs[len(durs)/2], durs[(len(durs)*99)/100]
	}
	return l
}
