// Command etcd runs a single-member etcd for the local test control plane,
// over go.etcd.io/etcd/server/v3/embed, because `go install` of etcd's own
// command is refused for its replace directives.
package main

import (
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "etcd:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg := embed.NewConfig()
	dataDir := flag.String("data-dir", "default.etcd", "directory for the data")
	listenClient := flag.String("listen-client-urls", "http://127.0.0.1:2379", "URL to serve clients on")
	advertiseClient := flag.String("advertise-client-urls", "", "client URL to advertise (default: the listen URL)")
	listenPeer := flag.String("listen-peer-urls", "http://127.0.0.1:2380", "URL to serve peers on")
	quota := flag.Int64("quota-backend-bytes", 2<<30, "backend size quota in bytes")
	flag.Parse()

	lc, err := url.Parse(*listenClient)
	if err != nil {
		return fmt.Errorf("--listen-client-urls: %w", err)
	}
	ac := lc
	if *advertiseClient != "" {
		if ac, err = url.Parse(*advertiseClient); err != nil {
			return fmt.Errorf("--advertise-client-urls: %w", err)
		}
	}
	lp, err := url.Parse(*listenPeer)
	if err != nil {
		return fmt.Errorf("--listen-peer-urls: %w", err)
	}
	cfg.Dir = *dataDir
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*lc}, []url.URL{*ac}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*lp}, []url.URL{*lp}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.QuotaBackendBytes = *quota
	cfg.LogLevel = "warn"

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return fmt.Errorf("starting: %w", err)
	}
	defer e.Close()
	select {
	case <-e.Server.ReadyNotify():
		fmt.Fprintln(os.Stderr, "etcd: ready, serving clients on", lc.String())
	case <-time.After(60 * time.Second):
		e.Server.Stop()
		return fmt.Errorf("not ready after 60s")
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case s := <-sig:
		fmt.Fprintln(os.Stderr, "etcd: stopping on", s)
	case err := <-e.Err():
		return err
	}
	return nil
}
