{{/* Names, labels, images and connection settings, derived in one place. */}}

{{- define "kubevod.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kubevod.fullname" -}}
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

{{/* Name of a component's objects: <fullname>-<component>, within 63 characters. */}}
{{- define "kubevod.componentName" -}}
{{- printf "%s-%s" (include "kubevod.fullname" .root | trunc (int (sub 62 (len .component))) | trimSuffix "-") .component }}
{{- end }}

{{- define "kubevod.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: a fixed subset that never changes across upgrades. */}}
{{- define "kubevod.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubevod.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "kubevod.labels" -}}
helm.sh/chart: {{ include "kubevod.chart" .root }}
{{ include "kubevod.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: kubevod
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* An image reference: repository:tag, plus @digest when one is pinned. */}}
{{- define "kubevod.image" -}}
{{- $tag := default .root.Chart.AppVersion .image.tag -}}
{{- if .image.digest -}}
{{- printf "%s:%s@%s" .image.repository $tag .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository $tag -}}
{{- end -}}
{{- end }}

{{- define "kubevod.operatorServiceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "kubevod.componentName" (dict "root" . "component" "operator")) .Values.operator.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kubevod.podSecurityContext" -}}
{{ toYaml .Values.podSecurityContext }}
{{- end }}

{{- define "kubevod.containerSecurityContext" -}}
{{ toYaml .Values.containerSecurityContext }}
{{- end }}

{{- define "kubevod.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The Secret holding store-url (s3://...) and catalog-url (mongodb://...): made by the chart, or the user's. */}}
{{- define "kubevod.connectionsSecret" -}}
{{- default (include "kubevod.componentName" (dict "root" . "component" "connections")) .Values.connections.existingSecret }}
{{- end }}

{{/* Env entries every kubevod component shares: where the catalog and store are, telemetry.
Called with (dict "root" . "keys" "api") for the API's scoped URLs, else with the root context
(operator: the same URLs as its Jobs). */}}
{{- define "kubevod.commonEnv" -}}
{{- $root := .root | default . }}
{{- $prefix := ternary "api-" "" (eq (.keys | default "") "api") }}
- name: KUBEVOD_CATALOG_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "kubevod.connectionsSecret" $root }}
      key: {{ $prefix }}catalog-url
- name: KUBEVOD_STORE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "kubevod.connectionsSecret" $root }}
      key: {{ $prefix }}store-url
{{- with include "kubevod.otlpEndpoint" $root }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- /* Downward API: spans and JSON logs say which pod, node and namespace wrote them. */}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
{{- end }}

{{- define "kubevod.otlpEndpoint" -}}
{{- if .Values.telemetry.endpoint }}
{{- .Values.telemetry.endpoint }}
{{- else if .Values.telemetry.collector.enabled }}
{{- printf "http://%s:4318" (include "kubevod.componentName" (dict "root" . "component" "otel-collector")) }}
{{- end }}
{{- end }}

{{/* Where nginx fetches /media/ from: MinIO, a public external S3 bucket, or the API. */}}
{{- define "kubevod.mediaOrigin" -}}
{{- if .Values.minio.enabled -}}
host: {{ include "kubevod.componentName" (dict "root" . "component" "minio") }}
port: "9000"
scheme: http
prefix: {{ printf "/%s/videos/" .Values.minio.bucket }}
{{- else if .Values.externalS3.publicRead -}}
{{- $hp := splitList ":" .Values.externalS3.endpoint }}
host: {{ first $hp }}
port: {{ (ternary (last $hp) (ternary "443" "80" .Values.externalS3.secure) (eq (len $hp) 2)) | quote }}
scheme: {{ ternary "https" "http" .Values.externalS3.secure }}
prefix: {{ printf "/%s/videos/" .Values.externalS3.bucket }}
{{- else -}}
host: {{ include "kubevod.componentName" (dict "root" . "component" "api") }}
port: {{ .Values.api.service.port | quote }}
scheme: http
prefix: /media/
{{- end }}
{{- end }}

{{/* The signing secret's Secret name. */}}
{{- define "kubevod.signingSecretName" -}}
{{- default (include "kubevod.componentName" (dict "root" . "component" "signing")) .Values.cache.signedUrls.existingSecret }}
{{- end }}

{{/* Name of the kopf peering object the operator replicas share. */}}
{{- define "kubevod.peeringName" -}}
{{- $name := include "kubevod.componentName" (dict "root" . "component" "operator") }}
{{- if .Values.operator.rbac.namespaced }}
{{- $name }}
{{- else }}
{{- /* Cluster-scoped: the namespace keeps two releases apart. */}}
{{- printf "%s-%s" .Release.Namespace $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* The API token's Secret name: the user's, or the one the chart makes. */}}
{{- define "kubevod.apiTokenSecretName" -}}
{{- default (include "kubevod.componentName" (dict "root" . "component" "api-token")) .Values.api.apiToken.existingSecret }}
{{- end }}

{{/* Scoped users the chart makes in its own MinIO and MongoDB (root stays with each server). */}}
{{- define "kubevod.minioWorkerUser" -}}kubevod-worker{{- end }}
{{- define "kubevod.minioApiUser" -}}kubevod-api{{- end }}
{{- define "kubevod.mongoWorkerUser" -}}kubevod-worker{{- end }}
{{- define "kubevod.mongoApiUser" -}}kubevod-api{{- end }}
