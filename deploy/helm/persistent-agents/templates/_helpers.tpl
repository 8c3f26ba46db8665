{{/* Labels every object of the release carries. */}}
{{- define "persistent-agents.labels" -}}
app.kubernetes.io/name: persistent-agents
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{/* Selector labels of one service's pods: (dict "root" $ "app" "<app id>"). */}}
{{- define "persistent-agents.selectorLabels" -}}
app.kubernetes.io/name: persistent-agents
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .app }}
{{- end }}

{{/* A service's image reference: (dict "root" $ "image" .Values.<service>.image). */}}
{{- define "persistent-agents.image" -}}
{{ printf "%s:%s" .image.repository (.image.tag | default .root.Chart.AppVersion) }}
{{- end }}

{{/* Connection metadata of the Redis-backed components. */}}
{{- define "persistent-agents.redisMetadata" -}}
- name: redisHost
  value: {{ .Values.redis.host | quote }}
{{- if .Values.redis.passwordSecret.name }}
- name: redisPassword
  secretKeyRef:
    name: {{ .Values.redis.passwordSecret.name | quote }}
    key: {{ .Values.redis.passwordSecret.key | quote }}
{{- end }}
{{- end }}

{{/* The PostgreSQL connection string, from a Kubernetes Secret (the default secret store on Kubernetes). */}}
{{- define "persistent-agents.postgresqlMetadata" -}}
- name: connectionString
  secretKeyRef:
    name: {{ .Values.postgresql.connectionStringSecret.name | quote }}
    key: {{ .Values.postgresql.connectionStringSecret.key | quote }}
{{- end }}
