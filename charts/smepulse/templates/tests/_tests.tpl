{{/* A helm test Pod running one check script of files/tests/ in the SME Pulse image.
Usage: include "smepulse.tests.pod" (dict "ctx" $ "name" "crd-established" "script" "check_crd_established.py" "env" (dict ...)) */}}
{{- define "smepulse.tests.pod" -}}
{{- $ctx := .ctx -}}
apiVersion: v1
kind: Pod
metadata:
  name: {{ include "smepulse.componentName" (list $ctx (printf "test-%s" .name)) }}
  namespace: {{ $ctx.Release.Namespace }}
  labels:
    {{- include "smepulse.componentLabels" (list $ctx "tests") | nindent 4 }}
  annotations:
    helm.sh/hook: test
    helm.sh/hook-delete-policy: before-hook-creation
spec:
  restartPolicy: Never
  serviceAccountName: {{ include "smepulse.tests.serviceAccountName" $ctx }}
  {{- include "smepulse.podDefaults" $ctx | nindent 2 }}
  containers:
    - name: check
      image: {{ include "smepulse.operatorImage" $ctx | quote }}
      imagePullPolicy: {{ $ctx.Values.image.pullPolicy }}
      args:
        - python
        - -c
        - {{ $ctx.Files.Get (printf "files/tests/%s" .script) | quote }}
      env:
        - name: TIMEOUT_SECONDS
          value: {{ $ctx.Values.tests.timeoutSeconds | quote }}
        {{- range $key, $value := .env }}
        - name: {{ $key }}
          value: {{ $value | quote }}
        {{- end }}
        {{- with $ctx.Values.tests.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      resources: {requests: {cpu: 10m, memory: 64Mi}, limits: {cpu: 200m, memory: 128Mi}}
      securityContext:
        {{- toYaml $ctx.Values.securityContext | nindent 8 }}
{{- end -}}
