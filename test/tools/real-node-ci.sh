#!/usr/bin/env bash
# CI's real-node step: runs `make real-node` (our image installed from the
# manifests and the chart on a real kubelet on containerd) when this machine
# allows it, and says exactly why not when it does not. It needs root and
# Debian's containerd, runc, CNI plugins, iptables and iproute2, which it
# installs with apt-get when they are missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

skip() { echo "real-node: NOT RUN on this machine: $*"; exit 0; }

[ "$(id -u)" = 0 ] || skip "not root (containerd, runc and the kubelet need root; run 'sudo make real-node' to try)"
[ -d /sys/fs/cgroup ] || skip "no cgroup filesystem at /sys/fs/cgroup"

need=()
for pair in containerd:containerd runc:runc ctr:containerd ip:iproute2 iptables:iptables; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
[ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] && [ -x /usr/lib/cni/loopback ] || need+=(containernetworking-plugins)
if [ ${#need[@]} -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || skip "missing ${need[*]} and no apt-get to install them"
  mapfile -t pkgs < <(printf '%s\n' "${need[@]}" | sort -u)
  echo "real-node: installing ${pkgs[*]} with apt-get"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}"; }; then
    skip "apt-get install ${pkgs[*]} failed (above)"
  fi
fi
echo "real-node: containerd $(containerd --version | awk '{print $3}'), runc $(runc --version | awk 'NR==1{print $3}'), kernel $(uname -r)"
exec make --no-print-directory real-node
