package localcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// process is one started binary.
type process struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
	err  error
}

// start runs bin with args, its output in dir/logs/name.log, its pid in
// dir/pids/name.
func start(dir, name, bin string, args ...string) (*process, error) {
	return startWithEnv(dir, name, bin, nil, args...)
}

// startWithEnv is start with extra environment variables (KEY=VALUE).
func startWithEnv(dir, name, bin string, env []string, args ...string) (*process, error) {
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "pids"), 0o755); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "logs", name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, log: logf, done: make(chan struct{})}
	if err := os.WriteFile(filepath.Join(dir, "pids", name), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		p.stop()
		return nil, err
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended, and how.
func (p *process) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after 10s.
func (p *process) stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	p.log.Close()
}

// StopPIDs stops the processes whose pids a cluster (or the playground)
// wrote into dir/pids: SIGTERM to each process group (or the process, when
// it leads none), SIGKILL to what is left after 15s. For `make demo-down`
// after the starting process is gone.
func StopPIDs(dir string) error {
	entries, err := os.ReadDir(filepath.Join(dir, "pids"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var pids []int
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, "pids", e.Name()))
		_ = os.Remove(filepath.Join(dir, "pids", e.Name()))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 1 || pid == os.Getpid() {
			continue
		}
		pids = append(pids, pid)
		signal(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(15 * time.Second)
	for _, pid := range pids {
		for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
		}
		if syscall.Kill(pid, 0) == nil {
			signal(pid, syscall.SIGKILL)
		}
	}
	return nil
}

// signal sends sig to the process group led by pid, or to pid alone.
func signal(pid int, sig syscall.Signal) {
	if err := syscall.Kill(-pid, sig); err != nil {
		_ = syscall.Kill(pid, sig)
	}
}

// freePort asks the kernel for an unused port on 127.0.0.1.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// permanent marks an error that polling cannot outwait.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// poll calls check every interval until it returns nil, ctx ends or limit
// passes; the last error explains a failure.
func poll(ctx context.Context, what string, interval, limit time.Duration, check func() error) error {
	deadline := time.Now().Add(limit)
	var last error
	for {
		if last = check(); last == nil {
			return nil
		}
		var stop permanent
		if errors.As(last, &stop) {
			return fmt.Errorf("%s: %w", what, stop.error)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not ready after %v: %w", what, limit, last)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case <-time.After(interval):
		}
	}
}

// Poll is poll for the packages that bring up more of a cluster beside
// this one (test/realnode): check every interval until it returns nil, ctx
// ends or limit passes; an error wrapped by Permanent ends it at once.
func Poll(ctx context.Context, what string, interval, limit time.Duration, check func() error) error {
	return poll(ctx, what, interval, limit, check)
}

// Permanent marks err as one that Poll cannot outwait.
func Permanent(err error) error { return permanent{err} }
