{{/* Names and labels shared by every template. */}}

{{- define "calmon.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "calmon.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "calmon.selectorLabels" -}}
app.kubernetes.io/name: {{ include "calmon.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "calmon.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "calmon.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: calmon
{{- end -}}

{{- define "calmon.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "calmon.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "calmon.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Secret entry -> environment variable calmon reads it from. */}}
{{- define "calmon.secretEnvNames" -}}
databaseUrl: CALMON_STORE_URL
kafkaSaslPassword: CALMON_KAFKA_SASL_PASSWORD
kafkaSslPassword: CALMON_KAFKA_SSL_PASSWORD
webhookSigningKey: CALMON_WEBHOOK_SECRET
alertmanagerPassword: CALMON_ALERTMANAGER_PASSWORD
alertmanagerBearerToken: CALMON_ALERTMANAGER_BEARER_TOKEN
{{- end -}}

{{/* True when calmon uses PostgreSQL (a database URL is given one way or the other). */}}
{{- define "calmon.usesDatabaseUrl" -}}
{{- with .Values.secrets.databaseUrl -}}
{{- if or .value .existingSecret -}}true{{- end -}}
{{- end -}}
{{- end -}}

{{/* True when the chart itself creates the Secret (some entry has a value). */}}
{{- define "calmon.createsSecret" -}}
{{- range $entry, $spec := .Values.secrets -}}
{{- if and $spec.value (not $spec.existingSecret) -}}true{{- end -}}
{{- end -}}
{{- end -}}

{{/*
env entries for every configured secret. Argument: dict "root" $ "secretName" <name of
the chart-created Secret to use for `value` entries>.
*/}}
{{- define "calmon.secretEnv" -}}
{{- $root := .root -}}
{{- $names := include "calmon.secretEnvNames" $root | fromYaml -}}
{{- range $entry, $spec := $root.Values.secrets }}
{{- if or $spec.value $spec.existingSecret }}
- name: {{ get $names $entry }}
  valueFrom:
    secretKeyRef:
      name: {{ $spec.existingSecret | default $.secretName }}
      key: {{ $spec.key }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Paths of the rule files inside the pod, in a stable order. */}}
{{- define "calmon.rulePaths" -}}
{{- $paths := list -}}
{{- if .Values.rules.shipped -}}
{{- $paths = append $paths "/etc/calmon/rules/calmon-rules.yaml" -}}
{{- end -}}
{{- range $name := keys .Values.rules.files | sortAlpha -}}
{{- $paths = append $paths (printf "/etc/calmon/rules/%s" $name) -}}
{{- end -}}
{{- toJson $paths -}}
{{- end -}}

{{/* calmon.yaml: the user's config plus the rule files the chart mounts. */}}
{{- define "calmon.configFile" -}}
{{- $config := deepCopy .Values.config -}}
{{- $rules := include "calmon.rulePaths" . | fromJsonArray -}}
{{- if $rules -}}
{{- $_ := set $config "rules" (concat (default (list) $config.rules) $rules) -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}

{{/* The config volume's files: calmon.yaml and the rule files (the release's ConfigMap
and the migrate hook's copy of it). */}}
{{- define "calmon.configData" -}}
calmon.yaml: |
  {{- include "calmon.configFile" . | nindent 2 }}
{{- if .Values.rules.shipped }}
calmon-rules.yaml: |
  {{- .Files.Get "files/calmon-rules.yaml" | nindent 2 }}
{{- end }}
{{- range $name := keys .Values.rules.files | sortAlpha }}
{{ $name }}: |
  {{- get $.Values.rules.files $name | toYaml | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The config volume's items: where each file of calmon.configData is mounted. */}}
{{- define "calmon.configItems" -}}
- {key: calmon.yaml, path: calmon.yaml}
{{- if .Values.rules.shipped }}
- {key: calmon-rules.yaml, path: rules/calmon-rules.yaml}
{{- end }}
{{- range $name := keys .Values.rules.files | sortAlpha }}
- {key: {{ $name }}, path: rules/{{ $name }}}
{{- end }}
{{- end -}}

{{- define "calmon.httpPort" -}}
{{- $http := default (dict) .Values.config.http -}}
{{- default 8080 $http.port -}}
{{- end -}}

{{/* Refuse combinations that cannot work, with a message that says what to change. */}}
{{- define "calmon.validate" -}}
{{- if not (include "calmon.usesDatabaseUrl" .) -}}
{{- if or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled -}}
{{- fail "calmon: SQLite (no secrets.databaseUrl) supports one replica only: set replicaCount=1 and autoscaling.enabled=false, or give secrets.databaseUrl (PostgreSQL)" -}}
{{- end -}}
{{- end -}}
{{- if and .Values.rules.shipped (not (hasKey (default (dict) .Values.config.webhooks) "recalibrate")) -}}
{{- fail "calmon: rules.shipped=true needs config.webhooks.recalibrate (the shipped CalibrationErrorHigh rule triggers it)" -}}
{{- end -}}
{{- range $name, $_ := .Values.rules.files -}}
{{- if not (regexMatch "^[A-Za-z0-9._-]+\\.ya?ml$" $name) -}}
{{- fail (printf "calmon: rules.files key %q must be a file name ending in .yaml" $name) -}}
{{- end -}}
{{- if eq $name "calmon-rules.yaml" -}}
{{- fail "calmon: rules.files cannot be named calmon-rules.yaml (the shipped rules' file)" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A probe from values; with webConfig.tls its httpGet uses HTTPS. */}}
{{- define "calmon.probe" -}}
{{- $probe := deepCopy .probe -}}
{{- if and .root.Values.webConfig.tls $probe.httpGet -}}
{{- $_ := set $probe.httpGet "scheme" "HTTPS" -}}
{{- end -}}
{{- toYaml $probe -}}
{{- end -}}
