{{/* Names, labels and the pieces both Deployments share. */}}

{{- define "segport.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "segport.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "segport.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "segport.labels" -}}
helm.sh/chart: {{ include "segport.chart" . }}
app.kubernetes.io/name: {{ include "segport.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one component: call with (dict "ctx" $ "component" "api"). */}}
{{- define "segport.selectorLabels" -}}
app.kubernetes.io/name: {{ include "segport.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "segport.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "segport.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "segport.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The Secret with jwt/encryption/client secrets: the chart's own or the operator's. */}}
{{- define "segport.secretName" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else }}
{{- printf "%s-secrets" (include "segport.fullname" .) }}
{{- end }}
{{- end }}

{{/* The Secret that holds the database and Redis URLs (they usually carry passwords). */}}
{{- define "segport.connectionSecretName" -}}
{{- printf "%s-connection" (include "segport.fullname" .) }}
{{- end }}

{{/* Whether the chart makes the secrets Secret. */}}
{{- define "segport.createSecret" -}}
{{- if and .Values.secrets.create (not .Values.secrets.existingSecret) }}true{{- end }}
{{- end }}

{{/* Arq waits jobCompletionWaitSeconds for running jobs; Kubernetes must wait longer. */}}
{{- define "segport.workerGracePeriod" -}}
{{- add (int .Values.config.jobCompletionWaitSeconds) (int .Values.worker.terminationGraceMarginSeconds) }}
{{- end }}

{{/* Everything a segport container reads its settings from. */}}
{{- define "segport.envFrom" -}}
- configMapRef:
    name: {{ include "segport.fullname" . }}
- secretRef:
    name: {{ include "segport.connectionSecretName" . }}
{{- if or (include "segport.createSecret" .) .Values.secrets.existingSecret }}
- secretRef:
    name: {{ include "segport.secretName" . }}
{{- end }}
{{- end }}

{{/* Volumes: the root filesystem is read-only, so /tmp is an emptyDir. */}}
{{- define "segport.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end }}

{{- define "segport.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- end }}

{{/* Changing the config or secrets rolls the pods. */}}
{{- define "segport.checksums" -}}
checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
checksum/secret: {{ include (print $.Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}
