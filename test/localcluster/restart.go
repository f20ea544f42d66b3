package localcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// RestartAPIServer stops the kube-apiserver (SIGTERM, SIGKILL after 10s),
// calls down while it is stopped (etcd, the controllers, the fleet and our
// server keep running, so they meet a control plane that is gone), then
// runs it again with the flags it started with and waits up to limit until
// it is ready. The log of each earlier run is kept as
// logs/kube-apiserver.<n>.log. An error from down is returned after the
// restart, so the cluster is whole either way.
func (c *Cluster) RestartAPIServer(ctx context.Context, limit time.Duration, down func() error) error {
	p, ok := c.procs["kube-apiserver"]
	if !ok {
		return errors.New("restarting the kube-apiserver: it is not running (a cluster from Start runs it)")
	}
	args := p.cmd.Args[1:]
	p.stop()
	delete(c.procs, "kube-apiserver")
	downErr := down()
	if err := c.keepLog("kube-apiserver"); err != nil {
		return err
	}
	if err := c.run("kube-apiserver", args...); err != nil {
		return err
	}
	if err := c.waitHealthy(ctx, c.APIServer+"/readyz", limit); err != nil {
		return err
	}
	if downErr != nil {
		return fmt.Errorf("while the kube-apiserver was stopped: %w", downErr)
	}
	return nil
}

// KeepMetricsServerLog renames our server's log to
// logs/metrics-server.<n>.log, so a StartMetricsServer after a stop or a
// crash does not overwrite what the earlier run wrote.
func (c *Cluster) KeepMetricsServerLog() error { return c.keepLog("metrics-server") }

// keepLog renames logs/name.log to the first free logs/name.<n>.log.
func (c *Cluster) keepLog(name string) error {
	logs := filepath.Join(c.opts.Dir, "logs")
	for n := 1; n < 1000; n++ {
		to := filepath.Join(logs, name+"."+strconv.Itoa(n)+".log")
		if _, err := os.Stat(to); err == nil {
			continue
		}
		if err := os.Rename(filepath.Join(logs, name+".log"), to); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("keeping the log of %s: %w", name, err)
		}
		return nil
	}
	return fmt.Errorf("keeping the log of %s: 999 earlier logs in %s; clean the folder", name, logs)
}
