{{/* Names are DNS-1123: lower case, dashes, at most 63 characters. */}}
{{- define "mesh-platform.fullname" -}}
{{- .Release.Name | replace "_" "-" | lower | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mesh-platform.labels" -}}
app.kubernetes.io/name: mesh-platform
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
mesh.os-climate.org/part: platform
{{- end -}}

{{- define "mesh-platform.selector" -}}
app.kubernetes.io/name: mesh-platform
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "mesh-platform.image" -}}
{{ printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end -}}

{{- define "mesh-platform.serviceAccountName" -}}
{{- .Values.serviceAccount.name | default (include "mesh-platform.fullname" .) -}}
{{- end -}}

{{/* The container fields every Dagster process of the release shares. */}}
{{- define "mesh-platform.container-env" -}}
env:
  - name: DAGSTER_HOME
    value: /opt/dagster/dagster_home
  {{- range $key, $value := .Values.env }}
  - name: {{ $key }}
    value: {{ $value | toString | quote }}
  {{- end }}
envFrom:
  - configMapRef:
      name: {{ include "mesh-platform.fullname" . }}-env
  {{- range .Values.envSecrets }}
  - secretRef:
      name: {{ . }}
  {{- end }}
volumeMounts:
  - name: instance
    mountPath: /opt/dagster/dagster_home/dagster.yaml
    subPath: dagster.yaml
  - name: workspace
    mountPath: /opt/dagster/app/workspace.yaml
    subPath: workspace.yaml
  {{- if .Values.computeLogs.enabled }}
  - name: aws
    mountPath: /opt/dagster/aws
    readOnly: true
  {{- end }}
{{- end -}}

{{- define "mesh-platform.volumes" -}}
- name: instance
  configMap:
    name: {{ include "mesh-platform.fullname" . }}-instance
- name: workspace
  configMap:
    name: {{ include "mesh-platform.fullname" . }}-workspace
{{- if .Values.computeLogs.enabled }}
- name: aws
  configMap:
    name: {{ include "mesh-platform.fullname" . }}-aws
{{- end }}
{{- end -}}
