package e2econsumers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// process is a consumer we started, its standard output and error in
// logs/<name>.log of the suite's folder.
type process struct {
	name, log string
	cmd       *exec.Cmd
	done      chan struct{}
	err       error // set when done is closed
}

// startProcess starts bin with args as name, logging into the suite's logs
// folder, and stops it when the test ends.
func startProcess(t *testing.T, name, bin string, args ...string) *process {
	t.Helper()
	log := filepath.Join(e.suite.Dir, "logs", name+".log")
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = e.suite.Dir // what it writes by itself lands there
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &process{name: name, log: log, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	logf("started %s (pid %d): %s %s; log in %s", name, cmd.Process.Pid, bin, strings.Join(args, " "), log)
	t.Cleanup(p.stop)
	return p
}

// stop ends the process: SIGTERM, then SIGKILL after 10 s.
func (p *process) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// exited returns the process's exit error when it has ended.
func (p *process) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// output is the process's log so far.
func (p *process) output() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// tail is the last n lines of the process's log, for failure messages.
func (p *process) tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.output(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// alive is an error when the process has ended, naming its exit and its
// log's last lines; a Poll check returns it to stop waiting.
func (p *process) alive() error {
	if done, err := p.exited(); done {
		return fmt.Errorf("%s exited (%v); its log ends:\n%s", p.name, err, p.tail(30))
	}
	return nil
}

// runOnce runs bin with args to its end, within limit, and returns its
// output (standard output and error, also written to the logs folder).
func runOnce(ctx context.Context, name string, limit time.Duration, bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = e.suite.Dir // what it writes by itself lands there
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	logf("running %s: %s %s", name, bin, strings.Join(args, " "))
	err := cmd.Run()
	if werr := os.WriteFile(filepath.Join(e.suite.Dir, "logs", name+".log"), out.Bytes(), 0o644); werr != nil {
		err = errors.Join(err, werr)
	}
	if err != nil {
		return out.String(), fmt.Errorf("%s %s: %w", bin, strings.Join(args, " "), err)
	}
	return out.String(), nil
}
