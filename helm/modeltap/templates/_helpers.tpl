{{/* Names, labels and the pieces every pod shares. */}}

{{- define "modeltap.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "modeltap.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "modeltap.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "modeltap.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "modeltap.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modeltap.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "modeltap.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "modeltap.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: modeltap
{{- end -}}

{{/* (dict "root" $ "component" "collect"): labels of one component's objects. */}}
{{- define "modeltap.componentLabels" -}}
{{ include "modeltap.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "modeltap.componentSelector" -}}
{{ include "modeltap.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "modeltap.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "modeltap.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "modeltap.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "modeltap.sidecarImage" -}}
{{- $image := .Values.injector.sidecar.image -}}
{{- printf "%s:%s" $image.repository (default .Chart.AppVersion $image.tag) -}}
{{- end -}}

{{/* Pod Security Standard "restricted", for the pod and for each container. */}}
{{- define "modeltap.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.podSecurity.runAsUser }}
runAsGroup: {{ .Values.podSecurity.runAsUser }}
fsGroup: {{ .Values.podSecurity.fsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "modeltap.containerSecurityContext" -}}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Environment every daemon gets: the config file, and credentials from Secrets. */}}
{{- define "modeltap.env" -}}
- name: MONITOR_CONFIG
  value: /etc/modeltap/modeltap.yaml
{{- with .Values.secrets.storageUrl }}{{ if .name }}
- name: MONITOR_STORAGE__URL
  valueFrom:
    secretKeyRef: {name: {{ .name | quote }}, key: {{ .key | quote }}}
{{- end }}{{ end }}
{{- with .Values.secrets.kafkaSaslPassword }}{{ if .name }}
- name: MONITOR_KAFKA__SECURITY__SASL_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ .name | quote }}, key: {{ .key | quote }}}
{{- end }}{{ end }}
{{- with .Values.secrets.labelsToken }}{{ if .name }}
- name: MONITOR_SERVE__LABELS_TOKEN
  valueFrom:
    secretKeyRef: {name: {{ .name | quote }}, key: {{ .key | quote }}}
{{- end }}{{ end }}
{{- end -}}

{{/* The config volume and its mount; the checksum restarts pods when the config changes. */}}
{{- define "modeltap.configChecksum" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- end -}}

{{- define "modeltap.configVolume" -}}
- name: config
  configMap:
    name: {{ include "modeltap.fullname" . }}-config
- name: tmp
  emptyDir: {sizeLimit: 64Mi}
{{- end -}}

{{- define "modeltap.configMount" -}}
- name: config
  mountPath: /etc/modeltap
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- end -}}

{{/* Scheduling values of one component (nodeSelector, tolerations, affinity). */}}
{{- define "modeltap.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity: {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
