{{/*
The injector's settings file (`monitor webhook --settings`), from injector.sidecar.
*/}}
{{- define "modeltap.injectorSettings" -}}
{{- $sidecar := .Values.injector.sidecar -}}
image: {{ include "modeltap.sidecarImage" . | quote }}
imagePullPolicy: {{ $sidecar.image.pullPolicy }}
native: {{ $sidecar.native }}
listenPort: {{ $sidecar.listenPort }}
metricsPort: {{ $sidecar.metricsPort }}
{{- if $sidecar.sinkSecret.name }}
sinkSecret: {name: {{ $sidecar.sinkSecret.name | quote }}, key: {{ $sidecar.sinkSecret.key | quote }}}
{{- else if (or $sidecar.sink (.Values.config.sink | default dict).url) }}
sink: {{ (or $sidecar.sink .Values.config.sink.url) | quote }}
{{- end }}
sampleRate: {{ $sidecar.sampleRate }}
spoolSizeLimit: {{ $sidecar.spoolSizeLimit | quote }}
runAsUser: {{ .Values.podSecurity.runAsUser }}
shutdownGraceSeconds: {{ $sidecar.shutdownGraceSeconds }}
resources:
  {{- toYaml $sidecar.resources | nindent 2 }}
{{- end -}}

{{/*
Manual injection: the sidecar container, for charts that write their own pod spec.

  initContainers:
    {{- include "modeltap.sidecar" (dict "image" "modeltap-sidecar:0.1.0" "model" "churn"
        "upstreamPort" 8080 "portName" "http" "sink" "kafka://kafka.monitoring:9092/modeltap.events") | nindent 4 }}
  volumes:
    {{- include "modeltap.sidecarVolume" (dict) | nindent 4 }}

Put it under initContainers (native sidecar, 1.29+) or, with "native" false, under
containers. Do what the webhook does to the model container yourself: take the name
(portName) off its port and give its probes the port number, so a Service whose
targetPort is that name reaches the sidecar. Keys and defaults are the webhook's (see
monitor/webhook/patch.py): image, model, version, task, upstreamPort, portName, listenPort,
metricsPort, sink, sampleRate, native, resources, runAsUser, shutdownGraceSeconds,
imagePullPolicy. A test renders this template and the webhook's patch side by side.
*/}}
{{- define "modeltap.sidecar" -}}
{{- $native := ternary .native true (hasKey . "native") -}}
{{- $listen := .listenPort | default 8700 -}}
{{- $metrics := .metricsPort | default 9108 -}}
{{- $sampleRate := ternary .sampleRate 1.0 (hasKey . "sampleRate") -}}
{{- $user := .runAsUser | default 65532 -}}
{{- $resources := .resources | default (dict "requests" (dict "cpu" "50m" "memory" "64Mi") "limits" (dict "memory" "256Mi")) -}}
- name: modeltap-sidecar
  image: {{ required "modeltap.sidecar needs image" .image | quote }}
  imagePullPolicy: {{ .imagePullPolicy | default "IfNotPresent" }}
  command: ["monitor", "sidecar"]
  ports:
    - {name: {{ .portName | default "modeltap" }}, containerPort: {{ $listen }}, protocol: TCP}
    - {name: mt-metrics, containerPort: {{ $metrics }}, protocol: TCP}
  env:
    - {name: MONITOR_SIDECAR__LISTEN, value: "0.0.0.0:{{ $listen }}"}
    - {name: MONITOR_SIDECAR__METRICS_LISTEN, value: "0.0.0.0:{{ $metrics }}"}
    - {name: MONITOR_SIDECAR__UPSTREAM, value: "http://127.0.0.1:{{ required "modeltap.sidecar needs upstreamPort" .upstreamPort }}"}
    - {name: MONITOR_SIDECAR__MODEL, value: {{ required "modeltap.sidecar needs model" .model | quote }}}
    {{- with .version }}
    - {name: MONITOR_SIDECAR__MODEL_VERSION, value: {{ . | quote }}}
    {{- end }}
    - {name: MONITOR_SIDECAR__SPOOL_DIR, value: /var/lib/modeltap/spool}
    - {name: MONITOR_SIDECAR__SHUTDOWN_GRACE, value: "{{ .shutdownGraceSeconds | default 25 }}s"}
    {{- with .sink }}
    - {name: MONITOR_SINK__URL, value: {{ . | quote }}}
    {{- end }}
    - {name: MONITOR_MODELS__0__NAME, value: {{ .model | quote }}}
    - {name: MONITOR_MODELS__0__TASK, value: {{ .task | default "classification" | quote }}}
    - {name: MONITOR_MODELS__0__CAPTURE__SAMPLE_RATE, value: {{ $sampleRate | toString | quote }}}
  resources:
    {{- toYaml $resources | nindent 4 }}
  startupProbe:
    httpGet: {path: /healthz, port: {{ $metrics }}, scheme: HTTP}
    periodSeconds: 1
    failureThreshold: 60
    timeoutSeconds: 2
  livenessProbe:
    httpGet: {path: /healthz, port: {{ $metrics }}, scheme: HTTP}
    periodSeconds: 10
    failureThreshold: 3
    timeoutSeconds: 2
  readinessProbe:
    httpGet: {path: /readyz, port: {{ $metrics }}, scheme: HTTP}
    periodSeconds: 5
    failureThreshold: 2
    timeoutSeconds: 2
  securityContext:
    allowPrivilegeEscalation: false
    capabilities: {drop: ["ALL"]}
    privileged: false
    readOnlyRootFilesystem: true
    runAsNonRoot: true
    runAsUser: {{ $user }}
    runAsGroup: {{ $user }}
    seccompProfile: {type: RuntimeDefault}
  volumeMounts:
    - {name: modeltap-spool, mountPath: /var/lib/modeltap/spool}
  terminationMessagePolicy: FallbackToLogsOnError
  {{- if $native }}
  restartPolicy: Always
  {{- end }}
{{- end -}}

{{- define "modeltap.sidecarVolume" -}}
- name: modeltap-spool
  emptyDir: {sizeLimit: {{ .spoolSizeLimit | default "512Mi" }}}
{{- end -}}
