{{/*
Names. The contract with the operator and the gateway is `<release>-gateway` (Service) and
`<release>-gateway-config` (the ConfigMap the operator writes and the gateway watches), so the base
name is the release name, not `<release>-<chart>`. It is cut to 48 characters so that every derived
name (the longest suffix is `-gateway-config`) stays a valid 63-character DNS label.
*/}}
{{- define "switchboard.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 48 | trimSuffix "-" -}}
{{- end -}}

{{- define "switchboard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "switchboard.operator.fullname" -}}
{{- printf "%s-operator" (include "switchboard.fullname" .) -}}
{{- end -}}

{{- define "switchboard.gateway.fullname" -}}
{{- printf "%s-gateway" (include "switchboard.fullname" .) -}}
{{- end -}}

{{/* The ConfigMap the operator renders and the gateway reads. The chart never creates it. */}}
{{- define "switchboard.gateway.configMapName" -}}
{{- printf "%s-gateway-config" (include "switchboard.fullname" .) -}}
{{- end -}}

{{/*
The one Secret holding the provider API keys the config references: the operator copies them into it
and the gateway reads it alone (its Role names it in resourceNames). Passed to both binaries as
`--provider-keys-secret`; a Secret name may be 253 characters, so the 48-character base leaves room.
*/}}
{{- define "switchboard.providerKeysSecret" -}}
{{- printf "%s-gateway-provider-keys" (include "switchboard.fullname" .) -}}
{{- end -}}

{{- define "switchboard.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create -}}
{{- default (include "switchboard.operator.fullname" .) .Values.operator.serviceAccount.name -}}
{{- else -}}
{{- required "operator.serviceAccount.name is required when operator.serviceAccount.create is false" .Values.operator.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "switchboard.gateway.serviceAccountName" -}}
{{- if .Values.gateway.serviceAccount.create -}}
{{- default (include "switchboard.gateway.fullname" .) .Values.gateway.serviceAccount.name -}}
{{- else -}}
{{- required "gateway.serviceAccount.name is required when gateway.serviceAccount.create is false" .Values.gateway.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Labels on every object (https://kubernetes.io/docs/concepts/overview/working-with-objects/common-labels/). */}}
{{- define "switchboard.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "switchboard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: switchboard
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Immutable selector labels shared by both workloads; each adds app.kubernetes.io/component. */}}
{{- define "switchboard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "switchboard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "switchboard.operator.labels" -}}
{{ include "switchboard.labels" . }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "switchboard.operator.selectorLabels" -}}
{{ include "switchboard.selectorLabels" . }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "switchboard.gateway.labels" -}}
{{ include "switchboard.labels" . }}
app.kubernetes.io/component: gateway
{{- end -}}

{{- define "switchboard.gateway.selectorLabels" -}}
{{ include "switchboard.selectorLabels" . }}
app.kubernetes.io/component: gateway
{{- end -}}

{{/*
The gateway pods' selector as `k=v,k=v` for the operator's `--gateway-selector`: the operator puts it
in the NetworkPolicies it writes in tenant namespaces, so it must be exactly the pod labels above.
*/}}
{{- define "switchboard.gateway.selectorArg" -}}
{{- $labels := include "switchboard.gateway.selectorLabels" . | fromYaml -}}
{{- $pairs := list -}}
{{- range $key := keys $labels | sortAlpha -}}
{{- $pairs = append $pairs (printf "%s=%s" $key (get $labels $key)) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{/*
Trace export settings of both workloads (monitoring.tracing), as the OTLP environment variables.
*/}}
{{- define "switchboard.tracingEnv" -}}
{{- with .Values.monitoring.tracing }}
{{- if .endpoint }}
- name: SWITCHBOARD_OTLP_ENDPOINT
  value: {{ .endpoint | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ .protocol | quote }}
- name: SWITCHBOARD_TRACE_SAMPLING_RATIO
  value: {{ .samplingRatio | quote }}
- name: OTEL_EXPORTER_OTLP_COMPRESSION
  value: {{ .compression | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "switchboard.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/*
Gateway replicas. SQLite is one file on one pod's volume: every further replica would keep its own
ledger, so spend would be split between them and Budgets enforced per replica. SQLite forces one.
*/}}
{{- define "switchboard.gateway.replicas" -}}
{{- if eq .Values.gateway.database.type "sqlite" -}}
1
{{- else -}}
{{- .Values.gateway.replicas -}}
{{- end -}}
{{- end -}}

{{/* Ports are part of the binaries' contract (flags below); kept in one place. */}}
{{- define "switchboard.gateway.port" -}}8080{{- end -}}
{{- define "switchboard.gateway.adminPort" -}}8081{{- end -}}
{{- define "switchboard.operator.metricsPort" -}}8081{{- end -}}

{{/*
NetworkPolicy peers: any address except the cloud instance metadata and credential endpoints. The
same ranges as the operator's egress policy (DENIED_IPV4 and DENIED_IPV6 in
operator/src/policies.rs; e2e/tests/test_network_policies.py checks they agree).
*/}}
{{- define "switchboard.anywhereButMetadata" -}}
- ipBlock:
    cidr: 0.0.0.0/0
    except: [100.100.100.200/32, 168.63.129.16/32, 169.254.0.0/16]
- ipBlock:
    cidr: ::/0
    except: ["fd00:ec2::23/128", "fd00:ec2::254/128", "fd20:ce::254/128", "fe80::/10"]
{{- end -}}
