//go:build realnode

// Command workload is the one program of the real-node images: with no
// flags it sleeps until SIGTERM (the pause image's sandbox process); with
// -hold-mib it allocates and touches that much memory and keeps it; with
// -cpu-millis it burns about that much CPU (1000 = one core) in 100ms
// periods; with -exit-after it exits after that long, with -exit-code's
// status. It is built static and packed by test/ociimage.
package main

import (
	"flag"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	holdMiB := flag.Int("hold-mib", 0, "MiB of memory to allocate, touch and keep")
	cpuMillis := flag.Int("cpu-millis", 0, "CPU to burn, in millicores (at most 1000)")
	exitAfter := flag.Duration("exit-after", 0, "exit after this long (an init container, or with -exit-code a container that crashes); 0 never")
	exitCode := flag.Int("exit-code", 0, "the status -exit-after exits with")
	exitOnce := flag.String("exit-once", "", "a file: -exit-after applies only while it does not exist, and the first run creates it (a container that restarts once)")
	flag.Parse()
	if *exitOnce != "" {
		if _, err := os.Stat(*exitOnce); err == nil {
			*exitAfter = 0
		} else if err := os.WriteFile(*exitOnce, []byte("ran\n"), 0o644); err != nil {
			os.Stderr.WriteString("workload: " + err.Error() + "\n")
			os.Exit(2)
		}
	}
	if *holdMiB < 0 || *holdMiB > 4096 || *cpuMillis < 0 || *cpuMillis > 1000 {
		os.Stderr.WriteString("workload: -hold-mib must be in [0,4096], -cpu-millis in [0,1000]\n")
		os.Exit(2)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)

	held := make([]byte, *holdMiB<<20)
	for i := 0; i < len(held); i += 4096 {
		held[i] = 1 // touch every page so it counts in the working set
	}
	if *cpuMillis > 0 {
		go burn(time.Duration(*cpuMillis) * 100 * time.Millisecond / 1000)
	}
	var exit <-chan time.Time
	if *exitAfter > 0 {
		exit = time.After(*exitAfter)
	}
	select {
	case <-stop:
	case <-exit:
		os.Exit(*exitCode)
	}
	// Keep held alive to the end.
	if len(held) > 0 && held[0] != 1 {
		os.Exit(3)
	}
}

// burn spins for busy out of every 100ms.
func burn(busy time.Duration) {
	const period = 100 * time.Millisecond
	for {
		start := time.Now()
		for time.Since(start) < busy {
		}
		if rest := period - time.Since(start); rest > 0 {
			time.Sleep(rest)
		}
	}
}
