#!/usr/bin/env bash
# Builds the pinned Kubernetes components and etcd for the local test control
# plane from Go modules (no release downloads are possible here) into
# test/.cache/bin/<version>/, kwok, the node emulator of the end-to-end
# suite, into test/.cache/bin/kwok-<kwok version>/, and helm, which lints and
# renders charts/metrics-server (test/chart), into
# test/.cache/bin/helm-<helm version>/, skipping any binary already there.
# Usage: test/tools/build-k8s.sh [name ...]   (default: all but kubelet and
# kube-proxy, which only the real node asks for)
# The metrics API's consumers of test/e2econsumers, the VPA recommender and
# the descheduler, are built only on request too (their tests ask), each from
# its wrapper module test/tools/<name> (go install refuses their modules'
# exclude and replace directives) into test/.cache/bin/<name>-<its version>/.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"   # the test module
version="v1.37.2"
minor="37"
out="$here/.cache/bin/$version"
kwok_version="v0.8.0"   # test/localcluster/kwok.go looks for kwok-<this>/kwok
kwok_out="$here/.cache/bin/kwok-$kwok_version"
helm_version="v3.22.0"   # test/chart looks for helm-<this>/helm
helm_out="$here/.cache/bin/helm-$helm_version"
vpa_version="v1.8.1"   # test/e2econsumers looks for vpa-recommender-<this>/vpa-recommender
descheduler_version="v0.36.0"   # and for descheduler-<this>/descheduler
mkdir -p "$out" "$kwok_out" "$helm_out"

ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=2026-01-01T00:00:00Z"
done

declare -A pkgs=(
  [etcd]=./tools/etcd
  [kube-apiserver]=k8s.io/kubernetes/cmd/kube-apiserver
  [kube-controller-manager]=k8s.io/kubernetes/cmd/kube-controller-manager
  [kube-scheduler]=k8s.io/kubernetes/cmd/kube-scheduler
  [kubectl]=k8s.io/kubernetes/cmd/kubectl
  # kubelet and kube-proxy are built only on request (make real-node), never by default.
  [kubelet]=k8s.io/kubernetes/cmd/kubelet
  [kube-proxy]=k8s.io/kubernetes/cmd/kube-proxy
  [kubectl-1.32]=.
  [kwok]=sigs.k8s.io/kwok/cmd/kwok@$kwok_version
  [helm]=helm.sh/helm/v3/cmd/helm@$helm_version
  # The consumers, on request: their versions are in their wrappers' go.mod.
  [vpa-recommender]=k8s.io/autoscaler/vertical-pod-autoscaler/pkg/recommender
  [descheduler]=sigs.k8s.io/descheduler/cmd/descheduler
)
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(etcd kubectl kube-scheduler kube-controller-manager kube-apiserver kubectl-1.32 kwok helm)

cd "$here"
for name in "${names[@]}"; do
  pkg="${pkgs[$name]:-}"
  if [ -z "$pkg" ]; then echo "build-k8s: unknown component $name" >&2; exit 2; fi
  dest="$out" ver="$version"
  [ "$name" != kwok ] || { dest="$kwok_out"; ver="$kwok_version"; }
  [ "$name" != helm ] || { dest="$helm_out"; ver="$helm_version"; }
  [ "$name" != kubectl-1.32 ] || ver="v1.32.3"
  [ "$name" != vpa-recommender ] || { ver="$vpa_version"; dest="$here/.cache/bin/$name-$ver"; }
  [ "$name" != descheduler ] || { ver="$descheduler_version"; dest="$here/.cache/bin/$name-$ver"; }
  if [ -x "$dest/$name" ]; then echo "build-k8s: $name $ver cached in $dest"; continue; fi
  echo "build-k8s: building $name $ver (a first build takes minutes on 2 cores)..."
  start=$(date +%s)
  # Print a heartbeat while the compiler is silent.
  ( while sleep 30; do echo "build-k8s:   still building $name ($(( $(date +%s) - start ))s)"; done ) &
  beat=$!
  dir="$here" flags="$ldflags"
  if [ "$name" = kubectl-1.32 ]; then
    # An older kubectl from its own module: it knows only metrics.k8s.io/v1beta1.
    dir="$here/tools/kubectl-v1.32"
    flags="-s -w"
    for vp in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      flags+=" -X $vp.gitVersion=v1.32.3 -X $vp.gitMajor=1 -X $vp.gitMinor=32"
    done
  fi
  if [ "$name" = vpa-recommender ] || [ "$name" = descheduler ]; then
    # A consumer from its wrapper module, whose go.mod pins it with a tool
    # directive. The descheduler parses its minor version from a release
    # build's v<date>-v<version> to compare it with the apiserver's.
    dir="$here/tools/$name"
    flags="-s -w"
    [ "$name" != descheduler ] || flags+=" -X sigs.k8s.io/descheduler/pkg/version.version=v20260101-$ver"
  fi
  mkdir -p "$dest/.tmp"
  if [ "$name" = kwok ] || [ "$name" = helm ]; then
    # kwok and helm from their own modules and go.mod files (go install
    # pkg@version), into a scratch folder first so a failed build leaves
    # nothing behind. Helm's release builds stamp its version and commit;
    # without them `helm version` says v3.22 and no commit. The module proxy
    # gives no commit, so it says where the source came from instead.
    flags="-s -w"
    if [ "$name" = helm ]; then
      flags+=" -X helm.sh/helm/v3/internal/version.version=$helm_version"
      flags+=" -X helm.sh/helm/v3/internal/version.gitCommit=go-module-proxy"
      flags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
    fi
    build=(env GOBIN="$dest/.tmp" CGO_ENABLED=0 nice -n 10 go install -trimpath -ldflags "$flags" "$pkg")
  else
    build=(env CGO_ENABLED=0 nice -n 10 go build -trimpath -ldflags "$flags" -o "$dest/.tmp/$name" "$pkg")
  fi
  if ! (cd "$dir" && "${build[@]}"); then
    kill "$beat" 2>/dev/null || true
    echo "build-k8s: building $name failed" >&2
    exit 1
  fi
  kill "$beat" 2>/dev/null || true
  mv "$dest/.tmp/$name" "$dest/$name"
  rmdir "$dest/.tmp" 2>/dev/null || true
  echo "build-k8s: $name built in $(( $(date +%s) - start ))s ($(du -h "$dest/$name" | cut -f1))"
done
