{{/* The chart's name, or nameOverride. */}}
{{- define "metrics-server.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The name of the release's objects: fullnameOverride, or the release name when
it already contains the chart's name (so `helm install metrics-server` names
them metrics-server, as the kustomize base), or <release>-<name>.
*/}}
{{- define "metrics-server.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := include "metrics-server.name" . }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "metrics-server.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride }}
{{- end }}

{{/* Labels that pick the server's pods: the Deployment's and Service's selector. */}}
{{- define "metrics-server.selectorLabels" -}}
app.kubernetes.io/name: {{ include "metrics-server.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels of every object: the selector labels, k8s-app as the kustomize base
sets it (so one `-l k8s-app=metrics-server` finds either install), the
chart's, and commonLabels.
*/}}
{{- define "metrics-server.labels" -}}
{{ include "metrics-server.selectorLabels" . }}
k8s-app: {{ include "metrics-server.name" . }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "metrics-server.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "metrics-server.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "metrics-server.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The port the server listens on: containerPort, or 10250 in the pod network
and 4443 on the host network, where the kubelet holds 10250.
*/}}
{{- define "metrics-server.port" -}}
{{- $port := int (default (ternary 4443 10250 .Values.hostNetwork.enabled) .Values.containerPort) }}
{{- if and .Values.hostNetwork.enabled (eq $port 10250) }}
{{- fail "containerPort 10250 collides with the kubelet's port on the host network: set another containerPort (default 4443) or disable hostNetwork.enabled" }}
{{- end }}
{{- $port }}
{{- end }}

{{/*
The Secret holding the serving certificate, for every tls.type: the
bootstrap's own <fullname>-tls-bootstrap (selfSigned, shipped empty by the
chart), cert-manager's <fullname>-tls (certManager), or yours.
*/}}
{{- define "metrics-server.tlsSecret" -}}
{{- if eq .Values.tls.type "existingSecret" }}
{{- .Values.tls.existingSecret.name }}
{{- else if eq .Values.tls.type "selfSigned" }}
{{- printf "%s-tls-bootstrap" (include "metrics-server.fullname" .) }}
{{- else }}
{{- printf "%s-tls" (include "metrics-server.fullname" .) }}
{{- end }}
{{- end }}

{{/*
The names of the APIServices the chart registers, comma-separated; empty
with apiService.create=false (the bootstrap then patches none).
*/}}
{{- define "metrics-server.apiServiceNames" -}}
{{- if .Values.apiService.create }}
{{- if .Values.apiService.v1 }}v1.metrics.k8s.io,{{ end }}v1beta1.metrics.k8s.io
{{- end }}
{{- end }}

{{/*
The ClusterRole that folds metrics.k8s.io into view, edit and admin: the
kustomize base's name, system:aggregated-metrics-reader, when the release's
objects are named as the base's (fullname metrics-server), so a move from
`kubectl apply -k` to the chart keeps one; else one per release.
*/}}
{{- define "metrics-server.aggregatedReader" -}}
{{- $fullname := include "metrics-server.fullname" . }}
{{- if eq $fullname "metrics-server" }}
{{- "system:aggregated-metrics-reader" }}
{{- else }}
{{- printf "system:%s-aggregated-reader" $fullname }}
{{- end }}
{{- end }}

{{/* Where the Secret's certificate is mounted (certManager, existingSecret). */}}
{{- define "metrics-server.tlsMountPath" -}}
/etc/metrics-server/tls
{{- end }}

{{/*
The DNS names the kube-apiserver and Prometheus dial: the Service's, in
every form a resolver in the cluster completes.
*/}}
{{- define "metrics-server.dnsNames" -}}
{{- $svc := include "metrics-server.fullname" . }}
{{- $ns := include "metrics-server.namespace" . }}
- {{ $svc }}
- {{ $svc }}.{{ $ns }}
- {{ $svc }}.{{ $ns }}.svc
- {{ $svc }}.{{ $ns }}.svc.cluster.local
{{- end }}

{{/*
Checks the values JSON schema cannot relate, failing the render with a
message that names them. Included by the Deployment.
*/}}
{{- define "metrics-server.validate" -}}
{{- $type := .Values.tls.type }}
{{- $api := .Values.apiService }}
{{- if and (ne $type "existingSecret") (or $api.caBundle $api.insecureSkipTLSVerify) }}
{{- fail (printf "apiService.caBundle and apiService.insecureSkipTLSVerify are for tls.type=existingSecret only: with tls.type=%s the CA is written into the APIServices for you; unset them" $type) }}
{{- end }}
{{- if eq $type "existingSecret" }}
{{- if not .Values.tls.existingSecret.name }}
{{- fail "tls.type=existingSecret needs tls.existingSecret.name, a kubernetes.io/tls Secret in the release's namespace" }}
{{- end }}
{{- if and $api.create (not $api.caBundle) (not $api.insecureSkipTLSVerify) }}
{{- fail "tls.type=existingSecret needs apiService.caBundle (the PEM of the CA that signed the Secret's certificate, for example --set-file apiService.caBundle=ca.crt), or apiService.insecureSkipTLSVerify=true on a test cluster" }}
{{- end }}
{{- if and $api.caBundle $api.insecureSkipTLSVerify }}
{{- fail "apiService.caBundle and apiService.insecureSkipTLSVerify=true contradict each other (the API refuses both): set one" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
A NetworkPolicy peer of one namespaceSelector and one podSelector (ANDed),
as a one-item YAML list; empty when both are empty, since an empty selector
would admit everything.
*/}}
{{- define "metrics-server.networkPeer" -}}
{{- $peer := dict }}
{{- with .namespaceSelector }}
{{- $_ := set $peer "namespaceSelector" . }}
{{- end }}
{{- with .podSelector }}
{{- $_ := set $peer "podSelector" . }}
{{- end }}
{{- if $peer }}
{{- toYaml (list $peer) }}
{{- end }}
{{- end }}
