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
