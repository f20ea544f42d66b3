package memlimit

import (
	"testing"
	"testing/fstest"
)

func TestApply(t *testing.T) {
	limited := fstest.MapFS{
		"proc/self/cgroup":         file("0::/\n"),
		"proc/self/mountinfo":      file(v2Mounts),
		"sys/fs/cgroup/memory.max": file("2147483648\n"),
	}
	unlimited := fstest.MapFS{
		"proc/self/cgroup":         file("0::/\n"),
		"proc/self/mountinfo":      file(v2Mounts),
		"sys/fs/cgroup/memory.max": file("max\n"),
	}
	broken := fstest.MapFS{
		"proc/self/cgroup":         file("0::/\n"),
		"proc/self/mountinfo":      file(v2Mounts),
		"sys/fs/cgroup/memory.max": file("2G\n"),
	}
	tests := []struct {
		name     string
		fs       fstest.MapFS
		env      map[string]string
		fraction float64
		want     int64 // the limit set; 0 = SetMemoryLimit not called
	}{
		{name: "cgroup limit, default fraction", fs: limited, want: 1932735283},
		{name: "cgroup limit, fraction given", fs: limited, fraction: 0.75, want: 1610612736},
		{name: "fraction out of range takes the default", fs: limited, fraction: 1.5, want: 1932735283},
		{name: "GOMEMLIMIT set wins", fs: limited, env: map[string]string{"GOMEMLIMIT": "1GiB"}},
		{name: "GOMEMLIMIT=off wins too", fs: limited, env: map[string]string{"GOMEMLIMIT": "off"}},
		{name: "no limit", fs: unlimited},
		{name: "unreadable limit leaves the runtime alone", fs: broken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var set int64
			calls := 0
			got := Apply(Options{
				FS:       tt.fs,
				Getenv:   func(k string) string { return tt.env[k] },
				Fraction: tt.fraction,
				SetMemoryLimit: func(n int64) int64 {
					calls++
					set = n
					return 0
				},
			})
			if got != tt.want || set != tt.want {
				t.Errorf("Apply() = %d, set %d; want %d", got, set, tt.want)
			}
			if wantCalls := map[bool]int{true: 1, false: 0}[tt.want != 0]; calls != wantCalls {
				t.Errorf("SetMemoryLimit called %d times, want %d", calls, wantCalls)
			}
		})
	}
}
