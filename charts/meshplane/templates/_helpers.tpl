{{/* meshplane.name is the chart name. */}}
{{- define "meshplane.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* meshplane.fullname is the release's name for its objects. */}}
{{- define "meshplane.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* meshplane.selectorLabels select the manager pods. */}}
{{- define "meshplane.selectorLabels" -}}
app.kubernetes.io/name: {{ include "meshplane.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: manager
{{- end -}}

{{/* meshplane.labels go on every object. */}}
{{- define "meshplane.labels" -}}
{{ include "meshplane.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: meshplane
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* meshplane.serviceAccountName is the manager's ServiceAccount. */}}
{{- define "meshplane.serviceAccountName" -}}
{{- default (include "meshplane.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* meshplane.concurrent is the --concurrent value of .Values.concurrent:
"all" as a bare number, the others as controller=number. */}}
{{- define "meshplane.concurrent" -}}
{{- $parts := list -}}
{{- range $name, $n := . -}}
{{- if eq $name "all" -}}
{{- $parts = append $parts (printf "%d" (int $n)) -}}
{{- else -}}
{{- $parts = append $parts (printf "%s=%d" $name (int $n)) -}}
{{- end -}}
{{- end -}}
{{- join "," $parts -}}
{{- end -}}
