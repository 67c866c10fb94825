{{/* S3 properties of a Trino catalog (native S3 file system). */}}
{{- define "smepulse.trino.s3Properties" -}}
fs.native-s3.enabled=true
s3.region={{ .region }}
{{- if .endpoint }}
s3.endpoint={{ .endpoint }}
s3.path-style-access=true
{{- end }}
{{- if .keys }}
s3.aws-access-key=${ENV:S3_ACCESS_KEY}
s3.aws-secret-key=${ENV:S3_SECRET_KEY}
{{- end }}
{{- end -}}

{{/* Pod template of a Trino node. Usage: include "smepulse.trino.pod" (list $ "coordinator") */}}
{{- define "smepulse.trino.pod" -}}
{{- $root := index . 0 -}}
{{- $role := index . 1 -}}
{{- $values := get $root.Values.trino $role -}}
metadata:
  labels:
    {{- include "smepulse.componentLabels" (list $root (printf "trino-%s" $role)) | nindent 4 }}
  annotations:
    checksum/config: {{ include (print $root.Template.BasePath "/trino/trino-configmap.yaml") $root | sha256sum | trunc 16 }}
    {{- with include "smepulse.credentialsChecksum" (dict "ctx" $root "minio" "trino" "postgresql" "iceberg") }}
    # Roll when its MinIO key or the iceberg role's password changes (helm upgrade).
    checksum/credentials: {{ . }}
    {{- end }}
spec:
  {{- include "smepulse.imagePullSecrets" $root | nindent 2 }}
  automountServiceAccountToken: false
  enableServiceLinks: false
  securityContext:
    {{- toYaml $root.Values.trino.podSecurityContext | nindent 4 }}
  containers:
    - name: trino
      image: {{ include "smepulse.thirdPartyImage" $root.Values.trino.image | quote }}
      imagePullPolicy: {{ $root.Values.trino.image.pullPolicy }}
      # Explicit, instead of the image's entrypoint script (run-trino): the launcher, the config
      # and data folders this Pod mounts, and a node id unique per Pod (its name).
      command:
        - /usr/lib/trino/bin/launcher
        - run
        - --etc-dir=/etc/trino
        - --data-dir=/data/trino
        - -Dnode.id=$(POD_NAME)
      env:
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        - name: POSTGRES_PASSWORD
          valueFrom:
            secretKeyRef:
              name: {{ include "smepulse.postgresql.workloadSecretName" (list $root "iceberg") }}
              key: {{ include "smepulse.postgresql.workloadPasswordKey" (list $root "iceberg") }}
        {{- if $root.Values.minio.enabled }}
        # Its own MinIO user (minio-users Secret), not the root user.
        - name: S3_ACCESS_KEY
          value: {{ include "smepulse.minio.userAccessKey" (list $root "trino") | quote }}
        {{- else }}
        - name: S3_ACCESS_KEY
          valueFrom:
            secretKeyRef:
              name: {{ include "smepulse.config.secretName" $root }}
              key: SMEPULSE_S3_ACCESS_KEY_ID
              optional: true
        {{- end }}
        {{- if $root.Values.minio.enabled }}
        # Its own MinIO user (minio-users Secret), not the root user.
        - name: S3_SECRET_KEY
          valueFrom:
            secretKeyRef:
              name: {{ include "smepulse.minio.usersSecretName" $root }}
              key: trino-secret-key
        {{- else }}
        - name: S3_SECRET_KEY
          valueFrom:
            secretKeyRef:
              name: {{ include "smepulse.config.secretName" $root }}
              key: SMEPULSE_S3_SECRET_ACCESS_KEY
              optional: true
        {{- end }}
      ports:
        - name: http
          containerPort: 8080
      # A JVM that loads every plugin: 30 s to a few minutes on a small node. The startup probe
      # allows 5 minutes; liveness counts only after it, so a slow start is not a restart loop.
      startupProbe:
        httpGet:
          path: /v1/info
          port: http
        periodSeconds: 5
        timeoutSeconds: 5
        failureThreshold: 60
      {{- if eq $role "coordinator" }}
      readinessProbe:
        httpGet:
          path: /v1/info
          port: http
        periodSeconds: 10
        timeoutSeconds: 5
      {{- end }}
      livenessProbe:
        httpGet:
          path: /v1/info
          port: http
        periodSeconds: 20
        timeoutSeconds: 5
      resources:
        {{- toYaml $values.resources | nindent 8 }}
      securityContext:
        {{- toYaml $root.Values.trino.securityContext | nindent 8 }}
      volumeMounts:
        - name: config
          mountPath: /etc/trino
          readOnly: true
        - name: catalog
          mountPath: /etc/trino/catalog
          readOnly: true
        - name: data
          mountPath: /data/trino
        - name: tmp
          mountPath: /tmp
  volumes:
    - name: config
      configMap:
        name: {{ include "smepulse.componentName" (list $root "trino") }}
        items:
          - {key: node.properties, path: node.properties}
          - {key: {{ $role }}.config.properties, path: config.properties}
          - {key: jvm.config, path: jvm.config}
          - {key: log.properties, path: log.properties}
    - name: catalog
      configMap:
        name: {{ include "smepulse.componentName" (list $root "trino") }}
        items:
          - {key: {{ $root.Values.trino.lakehouseCatalog }}.properties, path: {{ $root.Values.trino.lakehouseCatalog }}.properties}
          - {key: {{ $root.Values.trino.bronzeCatalog }}.properties, path: {{ $root.Values.trino.bronzeCatalog }}.properties}
          {{- range $name, $_ := $root.Values.trino.additionalCatalogs }}
          - {key: {{ $name }}.properties, path: {{ $name }}.properties}
          {{- end }}
    - name: data
      emptyDir: {}
    - name: tmp
      emptyDir: {}
  {{- with $root.Values.trino.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $root.Values.trino.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $root.Values.trino.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
