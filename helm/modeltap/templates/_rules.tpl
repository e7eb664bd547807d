{{/*
The alert rules, built as `monitor rules generate` builds them (exporters/rules.py) from the
catalogue in files/alerts.yaml and the thresholds in values.config. A test renders both
and compares them rule for rule.
*/}}

{{/* A number as Python's repr(float(x)) writes it: 1 -> "1.0", 0.05 -> "0.05". */}}
{{- define "modeltap.pyFloat" -}}
{{- $text := toString (float64 .) -}}
{{- if or (contains "." $text) (contains "e" $text) (contains "Inf" $text) (contains "NaN" $text) -}}
{{- $text -}}
{{- else -}}
{{- printf "%s.0" $text -}}
{{- end -}}
{{- end -}}

{{/* A duration ("90s", "5m", "1.5h", or seconds) in milliseconds. */}}
{{- define "modeltap.millis" -}}
{{- $text := toString . | trim -}}
{{- $units := dict "ms" 1 "s" 1000 "m" 60000 "h" 3600000 "d" 86400000 "w" 604800000 -}}
{{- $match := regexFindAll "^([0-9]+(?:\\.[0-9]+)?)\\s*(ms|s|m|h|d|w)?$" $text 1 -}}
{{- if not $match -}}
{{- fail (printf "not a duration: %q (use 30s, 5m, 1h, 7d)" $text) -}}
{{- end -}}
{{- $number := regexReplaceAll "[^0-9.]" $text "" -}}
{{- $unit := regexReplaceAll "^[0-9.\\s]+" $text "" | default "s" -}}
{{- round (mulf (float64 $number) (index $units $unit)) 0 | int64 -}}
{{- end -}}

{{/* The shortest exact spelling of a duration given in milliseconds (units.format_duration). */}}
{{- define "modeltap.formatDuration" -}}
{{- $millis := int64 . -}}
{{- $found := "" -}}
{{- range $unit := list (list "w" 604800000) (list "d" 86400000) (list "h" 3600000) (list "m" 60000) (list "s" 1000) -}}
{{- if and (not $found) $millis (eq (mod $millis (index $unit 1)) 0) -}}
{{- $found = printf "%d%s" (div $millis (index $unit 1)) (index $unit 0) -}}
{{- end -}}
{{- end -}}
{{- $found | default (printf "%dms" $millis) -}}
{{- end -}}

{{/* A threshold as people read it: "%g" with the unit (a share in percent). */}}
{{- define "modeltap.shown" -}}
{{- if eq .unit "%" -}}
{{- printf "%.6g%%" (mulf .value 100) -}}
{{- else -}}
{{- printf "%.6g%s" (float64 .value) .unit -}}
{{- end -}}
{{- end -}}

{{/* Model names as one regex alternation, sorted; a dot is escaped. */}}
{{- define "modeltap.alternatives" -}}
{{- $escaped := list -}}
{{- range sortAlpha . }}{{ $escaped = append $escaped (replace "." "\\\\." .) }}{{ end -}}
{{- join "|" $escaped -}}
{{- end -}}

{{/* The rule groups as YAML (the PrometheusRule's spec.groups). */}}
{{- define "modeltap.ruleGroups" -}}
{{- $catalogue := .Files.Get "files/alerts.yaml" | fromYaml -}}
{{- $defaults := $catalogue.defaults -}}
{{- $config := .Values.config | default dict -}}
{{- $detectors := $config.detectors | default dict -}}
{{- $given := $detectors.thresholds | default dict -}}
{{- $drift := $detectors.drift | default dict -}}
{{- $exporter := $config.exporter | default dict -}}
{{- $alertFor := $exporter.alert_for | default dict -}}
{{- $runbook := ternary $exporter.runbook_url $defaults.runbook_url (hasKey $exporter "runbook_url") -}}
{{- $job := ternary $exporter.job_pattern $defaults.job_pattern (hasKey $exporter "job_pattern") -}}
{{- $interval := include "modeltap.millis" (ternary $detectors.interval $defaults.interval (hasKey $detectors "interval")) -}}
{{- $groups := dict -}}
{{- $order := list -}}
{{- range $alert := $catalogue.alerts -}}
{{- /* (matcher, value) pairs, as exporters.alerts.variants makes them. */ -}}
{{- $variants := list -}}
{{- $threshold := $alert.threshold -}}
{{- if not $threshold -}}
{{- $variants = list (list "" nil) -}}
{{- else if hasKey $threshold "setting" -}}
{{- $variants = list (list "" (ternary (index $drift $threshold.setting) (index $defaults $threshold.setting) (hasKey $drift $threshold.setting))) -}}
{{- else if hasKey $threshold "intervals" -}}
{{- $variants = list (list "" (divf (mulf $interval $threshold.intervals) 1000)) -}}
{{- else -}}
{{- $key := $threshold.key -}}
{{- $default := ternary (index $given $key) (index $defaults.thresholds $key) (hasKey $given $key) -}}
{{- $values := list -}}
{{- $names := dict -}}
{{- $byValue := dict -}}
{{- range $model := $config.models | default list -}}
{{- $own := $model.thresholds | default dict -}}
{{- if and (hasKey $own $key) (ne (toJson (index $own $key)) (toJson $default)) -}}
{{- $id := toJson (index $own $key) -}}
{{- if not (hasKey $names $id) -}}
{{- $values = append $values $id -}}
{{- $_ := set $names $id list -}}
{{- $_ := set $byValue $id (index $own $key) -}}
{{- end -}}
{{- $_ := set $names $id (append (index $names $id) $model.name) -}}
{{- end -}}
{{- end -}}
{{- $others := list -}}
{{- range $id := $values -}}
{{- $others = concat $others (index $names $id) -}}
{{- if ne $id "null" -}}
{{- $variants = append $variants (list (printf "model=~\"%s\"" (include "modeltap.alternatives" (index $names $id))) (index $byValue $id)) -}}
{{- end -}}
{{- end -}}
{{- if ne (toJson $default) "null" -}}
{{- $matcher := "" -}}
{{- if $others -}}
{{- $matcher = printf "model!~\"%s\"" (include "modeltap.alternatives" $others) -}}
{{- end -}}
{{- $variants = append $variants (list $matcher $default) -}}
{{- end -}}
{{- end -}}
{{- range $variant := $variants -}}
{{- $matcher := index $variant 0 -}}
{{- $value := index $variant 1 -}}
{{- $number := "" -}}
{{- $shown := "" -}}
{{- if ne (toJson $value) "null" -}}
{{- $scaled := ternary (float64 $value) (mulf $value $alert.scale) (eq (float64 $alert.scale) 1.0) -}}
{{- $number = include "modeltap.pyFloat" $scaled -}}
{{- $shown = include "modeltap.shown" (dict "value" $scaled "unit" $alert.unit) -}}
{{- end -}}
{{- $expr := $alert.expr | replace ",sel}" (ternary (printf ",%s}" $matcher) "}" (ne $matcher "")) -}}
{{- $expr = $expr | replace "{sel}" (ternary (printf "{%s}" $matcher) "" (ne $matcher "")) -}}
{{- $expr = $expr | replace "{value}" $number | replace "{job}" $job -}}
{{- $wait := ternary (index $alertFor $alert.name) $alert.wait (hasKey $alertFor $alert.name) -}}
{{- $labels := dict "severity" $alert.severity -}}
{{- if $shown }}{{ $_ := set $labels "threshold" $shown }}{{ end -}}
{{- $rule := dict
  "alert" $alert.name
  "expr" $expr
  "for" (include "modeltap.formatDuration" (include "modeltap.millis" $wait))
  "labels" $labels
  "annotations" (dict
    "summary" ($alert.summary | replace "{threshold}" $shown)
    "description" ($alert.description | replace "{threshold}" $shown)
    "runbook_url" (printf "%s#runbook-%s" $runbook (lower $alert.name))) -}}
{{- if not (hasKey $groups $alert.group) -}}
{{- $order = append $order $alert.group -}}
{{- $_ := set $groups $alert.group list -}}
{{- end -}}
{{- $_ := set $groups $alert.group (append (index $groups $alert.group) $rule) -}}
{{- end -}}
{{- end -}}
{{- $result := list -}}
{{- range $name := $order -}}
{{- $result = append $result (dict "name" $name "rules" (index $groups $name)) -}}
{{- end -}}
{{- toYaml $result -}}
{{- end -}}
