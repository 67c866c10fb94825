{{/* ---------------------------------------------------------------------------------------
Names and labels
--------------------------------------------------------------------------------------- */}}

{{/* Chart name, overridable; 63 characters is the limit of a DNS label. */}}
{{- define "smepulse.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Prefix of every object name: release name, plus the chart name unless already in it. */}}
{{- define "smepulse.fullname" -}}
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

{{/* <fullname>-<suffix>, trimmed to a DNS label. Usage: include "smepulse.componentName" (list $ "operator") */}}
{{- define "smepulse.componentName" -}}
{{- $ctx := index . 0 -}}
{{- printf "%s-%s" (include "smepulse.fullname" $ctx | trunc (int (sub 62 (len (index . 1))))) (index . 1) | trimSuffix "-" -}}
{{- end -}}

{{/* Name of a pipeline's CronJob, at most 52 characters: the CronJob controller appends an
11-character suffix (-<minutes since epoch>) to name each Job, and the API server refuses longer
CronJob names. <fullname>-<pipeline> when it fits; else the fullname truncated, an 8-character
hash of the whole fullname (two long release names sharing a prefix stay apart) and the
pipeline. Usage: include "smepulse.cronJobName" (list $ "daily-etl") */}}
{{- define "smepulse.cronJobName" -}}
{{- $ctx := index . 0 -}}
{{- $pipeline := index . 1 -}}
{{- $full := include "smepulse.fullname" $ctx -}}
{{- $name := printf "%s-%s" $full $pipeline -}}
{{- if le (len $name) 52 -}}
{{- $name -}}
{{- else -}}
{{- $keep := int (sub 52 (add (len $pipeline) 10)) -}}
{{- printf "%s-%s-%s" ($full | trunc $keep | trimSuffix "-") ($full | sha256sum | trunc 8) $pipeline -}}
{{- end -}}
{{- end -}}

{{/* Name of a cluster-scoped object of this release: <namespace>-<fullname>-<suffix>, so that
releases of the same name in two namespaces (both "smepulse", the name the settings' defaults
assume) do not fight over one object. Past 63 characters the <namespace>-<fullname> part is
truncated and followed by an 8-character hash of it.
Usage: include "smepulse.clusterScopedName" (list $ "pipelineruns-edit") */}}
{{- define "smepulse.clusterScopedName" -}}
{{- $ctx := index . 0 -}}
{{- $suffix := index . 1 -}}
{{- $base := printf "%s-%s" $ctx.Release.Namespace (include "smepulse.fullname" $ctx) -}}
{{- $max := int (sub 62 (len $suffix)) -}}
{{- if gt (len $base) $max -}}
{{- $base = printf "%s-%s" ($base | trunc (int (sub $max 9)) | trimSuffix "-") ($base | sha256sum | trunc 8) -}}
{{- end -}}
{{- printf "%s-%s" $base $suffix -}}
{{- end -}}

{{- define "smepulse.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "smepulse.labels" -}}
helm.sh/chart: {{ include "smepulse.chart" . }}
{{ include "smepulse.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: smepulse
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "smepulse.selectorLabels" -}}
app.kubernetes.io/name: {{ include "smepulse.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of one component's objects. Usage: include "smepulse.componentLabels" (list $ "operator") */}}
{{- define "smepulse.componentLabels" -}}
{{ include "smepulse.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* Selector labels of one component. Usage: include "smepulse.componentSelectorLabels" (list $ "operator") */}}
{{- define "smepulse.componentSelectorLabels" -}}
{{ include "smepulse.selectorLabels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* ---------------------------------------------------------------------------------------
Images
--------------------------------------------------------------------------------------- */}}

{{/* The SME Pulse images (Dockerfile targets): `repository@digest` when a digest pins it,
else `repository:tag` with the tag defaulting to the chart's appVersion.
operator = the operator, `smepulse submit` and the helm tests; stages = everything else. */}}
{{- define "smepulse.imageRef" -}}
{{- if .image.digest -}}
{{- printf "%s@%s" .image.repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .root.Values.image.tag) -}}
{{- end -}}
{{- end -}}
{{- define "smepulse.operatorImage" -}}
{{- include "smepulse.imageRef" (dict "image" .Values.image.operator "root" .) -}}
{{- end -}}
{{- define "smepulse.stagesImage" -}}
{{- include "smepulse.imageRef" (dict "image" .Values.image.stages "root" .) -}}
{{- end -}}

{{/* A third-party image block {repository, tag}. */}}
{{- define "smepulse.thirdPartyImage" -}}
{{- printf "%s:%s" .repository (toString .tag) -}}
{{- end -}}

{{- define "smepulse.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/* ---------------------------------------------------------------------------------------
ServiceAccounts and the stages' config
--------------------------------------------------------------------------------------- */}}

{{- define "smepulse.operator.serviceAccountName" -}}
{{- default (include "smepulse.componentName" (list . "operator")) .Values.operator.serviceAccount.name -}}
{{- end -}}

{{- define "smepulse.submit.serviceAccountName" -}}
{{- default (include "smepulse.componentName" (list . "submit")) .Values.cronJobs.serviceAccount.name -}}
{{- end -}}

{{- define "smepulse.jobs.serviceAccountName" -}}
{{- default (include "smepulse.componentName" (list . "jobs")) .Values.jobs.serviceAccount.name -}}
{{- end -}}

{{- define "smepulse.tests.serviceAccountName" -}}
{{- include "smepulse.componentName" (list . "tests") -}}
{{- end -}}

{{/* ConfigMap the stage Jobs read (settings' default job_config_map is smepulse-config). */}}
{{- define "smepulse.config.configMapName" -}}
{{- default (include "smepulse.componentName" (list . "config")) .Values.config.configMapName -}}
{{- end -}}

{{/* Secret the stage Jobs read: the existing one, or the chart's (default smepulse-secrets). */}}
{{- define "smepulse.config.secretName" -}}
{{- if .Values.config.existingSecret -}}
{{- .Values.config.existingSecret -}}
{{- else -}}
{{- default (include "smepulse.componentName" (list . "secrets")) .Values.config.secretName -}}
{{- end -}}
{{- end -}}

{{/* ---------------------------------------------------------------------------------------
Generated credentials

smepulse.secretValue returns one credential, identical everywhere in a render:
  1. the value given in values, if any;
  2. else the value already stored in the live Secret (lookup), so `helm upgrade` keeps it;
  3. else a new random one.
The result is memoised in .Values (one map shared by all templates of the chart), so that,
e.g., MinIO's root password and the copy in the stages' Secret agree within one render.
`lookup` needs a live cluster: `helm template`, `--dry-run=client` and Argo CD render without
one and would generate a new value each time; use the `existingSecret` values there.
Usage: include "smepulse.secretValue" (dict "ctx" $ "secret" NAME "key" KEY "value" GIVEN)
--------------------------------------------------------------------------------------- */}}
{{- define "smepulse.secretValue" -}}
{{- $ctx := .ctx -}}
{{- if not (hasKey $ctx.Values "__smepulseGenerated") -}}
{{- $_ := set $ctx.Values "__smepulseGenerated" dict -}}
{{- end -}}
{{- $memo := get $ctx.Values "__smepulseGenerated" -}}
{{- $memoKey := printf "%s/%s" .secret .key -}}
{{- if not (hasKey $memo $memoKey) -}}
{{- $value := .value -}}
{{- if not $value -}}
{{- $live := lookup "v1" "Secret" $ctx.Release.Namespace .secret -}}
{{- $data := get ($live | default dict) "data" | default dict -}}
{{- if hasKey $data .key -}}
{{- $value = index $data .key | b64dec -}}
{{- else -}}
{{- $value = randAlphaNum 32 -}}
{{- end -}}
{{- end -}}
{{- $_ := set $memo $memoKey $value -}}
{{- end -}}
{{- get $memo $memoKey -}}
{{- end -}}

{{- define "smepulse.minio.secretName" -}}
{{- default (include "smepulse.componentName" (list . "minio")) .Values.minio.auth.existingSecret -}}
{{- end -}}

{{- define "smepulse.minio.rootPassword" -}}
{{- include "smepulse.secretValue" (dict "ctx" . "secret" (include "smepulse.componentName" (list . "minio")) "key" "root-password" "value" .Values.minio.auth.rootPassword) -}}
{{- end -}}

{{- /*
The chart's own MinIO users (minio.enabled): one per workload, made by the `users` container of
MinIO's Pod (files/scripts/minio_users.py) with its own policy. Access keys are fixed names
(smepulse-stages, smepulse-trino, smepulse-mlflow), secret keys generated once and kept
(smepulse.secretValue) in the minio-users Secret, or read from minio.auth.existingSecret
(keys stages-secret-key, trino-secret-key, mlflow-secret-key).
Usage: include "smepulse.minio.userSecretKey" (list $ "trino")
*/}}
{{- define "smepulse.minio.usersSecretName" -}}
{{- default (include "smepulse.componentName" (list . "minio-users")) .Values.minio.auth.existingSecret -}}
{{- end -}}

{{- define "smepulse.minio.userAccessKey" -}}
{{- printf "smepulse-%s" (index . 1) -}}
{{- end -}}

{{- define "smepulse.minio.userSecretKey" -}}
{{- $ctx := index . 0 -}}
{{- $given := "" -}}
{{- if not $ctx.Values.minio.auth.existingSecret -}}
{{- $given = get ($ctx.Values.minio.auth.userSecretKeys | default dict) (index . 1) | default "" -}}
{{- end -}}
{{- include "smepulse.secretValue" (dict "ctx" $ctx "secret" (include "smepulse.minio.usersSecretName" $ctx) "key" (printf "%s-secret-key" (index . 1)) "value" $given) -}}
{{- end -}}

{{- define "smepulse.postgresql.secretName" -}}
{{- if .Values.postgresql.enabled -}}
{{- default (include "smepulse.componentName" (list . "postgresql")) .Values.postgresql.auth.existingSecret -}}
{{- else -}}
{{- required "postgresql.external.existingSecret is required when postgresql.enabled is false and MLflow, Trino or Metabase is enabled" .Values.postgresql.external.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "smepulse.postgresql.passwordKey" -}}
{{- if .Values.postgresql.enabled -}}
{{- if .Values.postgresql.auth.existingSecret }}{{ .Values.postgresql.auth.existingSecretPasswordKey }}{{ else }}password{{ end -}}
{{- else -}}
{{- .Values.postgresql.external.existingSecretPasswordKey -}}
{{- end -}}
{{- end -}}

{{- define "smepulse.postgresql.host" -}}
{{- if .Values.postgresql.enabled -}}
{{- include "smepulse.componentName" (list . "postgresql") -}}
{{- else -}}
{{- required "postgresql.external.host is required when postgresql.enabled is false and MLflow, Trino or Metabase is enabled" .Values.postgresql.external.host -}}
{{- end -}}
{{- end -}}

{{- define "smepulse.postgresql.port" -}}
{{- if .Values.postgresql.enabled }}5432{{ else }}{{ .Values.postgresql.external.port }}{{ end -}}
{{- end -}}

{{- define "smepulse.postgresql.username" -}}
{{- if .Values.postgresql.enabled }}{{ .Values.postgresql.auth.username }}{{ else }}{{ .Values.postgresql.external.username }}{{ end -}}
{{- end -}}

{{- /*
Each workload's own PostgreSQL role (postgresql.enabled): role mlflow, iceberg (Trino's Iceberg
catalog) or metabase, owner of its database, made by the `roles` container of PostgreSQL's Pod;
passwords generated once and kept in the postgresql-roles Secret, or read from
postgresql.auth.existingSecret (keys mlflow-password, iceberg-password, metabase-password). With an external PostgreSQL
every workload uses postgresql.external's user and Secret, as before.
Usage: include "smepulse.postgresql.workloadUser" (list $ "mlflow"), and likewise
workloadSecretName and workloadPasswordKey.
*/}}
{{- define "smepulse.postgresql.rolesSecretName" -}}
{{- default (include "smepulse.componentName" (list . "postgresql-roles")) .Values.postgresql.auth.existingSecret -}}
{{- end -}}

{{- define "smepulse.postgresql.rolePassword" -}}
{{- $ctx := index . 0 -}}
{{- $given := "" -}}
{{- if not $ctx.Values.postgresql.auth.existingSecret -}}
{{- $given = get ($ctx.Values.postgresql.auth.rolePasswords | default dict) (index . 1) | default "" -}}
{{- end -}}
{{- include "smepulse.secretValue" (dict "ctx" $ctx "secret" (include "smepulse.postgresql.rolesSecretName" $ctx) "key" (printf "%s-password" (index . 1)) "value" $given) -}}
{{- end -}}

{{- /*
checksum/credentials of a workload's Pod template: a hash (never the value) of exactly the
credentials the workload reads, so that a `helm upgrade` that changes one of them rolls the
workloads using it and only them. Only credentials the chart renders count: its MinIO user's
secret key (`minio.userSecretKeys`, or the stages' Secret's copy of `minio.external`'s key
with an external S3) and its PostgreSQL role's password (`postgresql.rolePasswords`). A
credential in an existingSecret (or an external PostgreSQL's) is unknown to the render (Argo
CD and `helm template` cannot look it up): rotating it there needs a `kubectl rollout
restart` of the workloads. Empty when the workload reads no credential the chart renders.
Usage: include "smepulse.credentialsChecksum" (dict "ctx" $ "minio" "trino" "postgresql" "iceberg")
*/}}
{{- define "smepulse.credentialsChecksum" -}}
{{- $ctx := .ctx -}}
{{- $parts := list -}}
{{- if .minio -}}
{{- if and $ctx.Values.minio.enabled (not $ctx.Values.minio.auth.existingSecret) -}}
{{- $parts = append $parts (printf "minio/%s=%s" .minio (include "smepulse.minio.userSecretKey" (list $ctx .minio))) -}}
{{- else if and (not $ctx.Values.minio.enabled) (not $ctx.Values.config.existingSecret) -}}
{{- $parts = append $parts (printf "s3=%s" ($ctx.Values.minio.external.secretAccessKey | default "")) -}}
{{- end -}}
{{- end -}}
{{- if and .postgresql $ctx.Values.postgresql.enabled (not $ctx.Values.postgresql.auth.existingSecret) -}}
{{- $parts = append $parts (printf "postgresql/%s=%s" .postgresql (include "smepulse.postgresql.rolePassword" (list $ctx .postgresql))) -}}
{{- end -}}
{{- if $parts }}{{ join "," $parts | sha256sum | trunc 16 }}{{ end -}}
{{- end -}}

{{- define "smepulse.postgresql.workloadUser" -}}
{{- $ctx := index . 0 -}}
{{- if $ctx.Values.postgresql.enabled }}{{ index . 1 }}{{ else }}{{ $ctx.Values.postgresql.external.username }}{{ end -}}
{{- end -}}

{{- define "smepulse.postgresql.workloadSecretName" -}}
{{- $ctx := index . 0 -}}
{{- if $ctx.Values.postgresql.enabled }}{{ include "smepulse.postgresql.rolesSecretName" $ctx }}{{ else }}{{ include "smepulse.postgresql.secretName" $ctx }}{{ end -}}
{{- end -}}

{{- define "smepulse.postgresql.workloadPasswordKey" -}}
{{- $ctx := index . 0 -}}
{{- if $ctx.Values.postgresql.enabled }}{{ index . 1 }}-password{{ else }}{{ include "smepulse.postgresql.passwordKey" $ctx }}{{ end -}}
{{- end -}}

{{- define "smepulse.redis.secretName" -}}
{{- default (include "smepulse.componentName" (list . "redis")) .Values.redis.auth.existingSecret -}}
{{- end -}}

{{/* ---------------------------------------------------------------------------------------
Endpoints the stages use (chart service or the external one)
--------------------------------------------------------------------------------------- */}}

{{- define "smepulse.s3.endpointUrl" -}}
{{- if .Values.minio.enabled -}}
{{- printf "http://%s.%s.svc:9000" (include "smepulse.componentName" (list . "minio")) .Release.Namespace -}}
{{- else -}}
{{- .Values.minio.external.endpointUrl -}}
{{- end -}}
{{- end -}}

{{- define "smepulse.trino.host" -}}
{{- if .Values.trino.enabled -}}
{{- printf "%s.%s.svc" (include "smepulse.componentName" (list . "trino")) .Release.Namespace -}}
{{- else -}}
{{- .Values.trino.external.host -}}
{{- end -}}
{{- end -}}

{{- define "smepulse.mlflow.trackingUri" -}}
{{- if .Values.mlflow.enabled -}}
{{- printf "http://%s.%s.svc:5000" (include "smepulse.componentName" (list . "mlflow")) .Release.Namespace -}}
{{- else -}}
{{- .Values.mlflow.external.trackingUri -}}
{{- end -}}
{{- end -}}

{{- define "smepulse.metabase.url" -}}
{{- if .Values.metabase.enabled -}}
{{- printf "http://%s.%s.svc:3000" (include "smepulse.componentName" (list . "metabase")) .Release.Namespace -}}
{{- else -}}
{{- .Values.metabase.external.url -}}
{{- end -}}
{{- end -}}

{{/* Pod-level settings shared by the SME Pulse Pods: pull secrets, no Service-link variables
(Kubernetes would inject <SERVICE>_PORT=tcp://... for every Service in the namespace, e.g.
SMEPULSE_OPERATOR_METRICS_PORT, which the settings reject) and the security context.
Pods that do not use this helper set enableServiceLinks: false themselves. */}}
{{- define "smepulse.podDefaults" -}}
{{- include "smepulse.imagePullSecrets" . }}
enableServiceLinks: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end -}}

{{/* The embedded warehouse's PersistentVolumeClaim: the existing one, or <fullname>-warehouse. */}}
{{- define "smepulse.warehouse.claimName" -}}
{{- .Values.embeddedWarehouse.persistence.existingClaim | default (include "smepulse.componentName" (list . "warehouse")) -}}
{{- end -}}
