{{- define "mesh-domain.name" -}}
{{- required "domain is required (the code location's name)" .Values.domain | replace "_" "-" | lower | trunc 56 | trimSuffix "-" -}}
{{- end -}}

{{- define "mesh-domain.fullname" -}}
{{- printf "mesh-%s" (include "mesh-domain.name" .) -}}
{{- end -}}

{{- define "mesh-domain.selector" -}}
app.kubernetes.io/name: mesh-domain
app.kubernetes.io/instance: {{ .Release.Name }}
mesh.os-climate.org/domain: {{ include "mesh-domain.name" . }}
{{- end -}}

{{- define "mesh-domain.labels" -}}
{{ include "mesh-domain.selector" . }}
app.kubernetes.io/version: {{ .Values.codeVersion | default .Values.image.tag | default .Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: code-server
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
mesh.os-climate.org/part: domain
{{- end -}}

{{- define "mesh-domain.image" -}}
{{ printf "%s:%s" (required "image.repository is required" .Values.image.repository) (required "image.tag is required" .Values.image.tag) }}
{{- end -}}
