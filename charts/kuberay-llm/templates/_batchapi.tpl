{{/*
The OpenAI Batch API (batchApi.*): the `batches` block of the Serve application's args, checked by
serve_apps.batches.config.BatchesConfig in the pods (and by tests/charts/test_batch_api.py here).
*/}}

{{/* The ServiceAccount of the RayService's pods when the Batch API is on. */}}
{{- define "kuberay-llm.batchApi.serviceAccount" -}}
{{- printf "%s-batch-api" (include "kuberay-llm.fullname" .) }}
{{- end }}

{{/* The claim holding the batch files (empty when storage.root is a bucket). */}}
{{- define "kuberay-llm.batchApi.claim" -}}
{{- $s := .Values.batchApi.storage }}
{{- if not $s.root }}
{{- if $s.pvc.existingClaim }}
{{- $s.pvc.existingClaim }}
{{- else if $s.pvc.create }}
{{- printf "%s-batches" (include "kuberay-llm.fullname" .) }}
{{- else }}
{{- fail "batchApi.storage: set root (s3://bucket/prefix or gs://bucket/prefix), or a claim (pvc.create, or pvc.existingClaim)" }}
{{- end }}
{{- end }}
{{- end }}

{{/* storage_root: the bucket, or where the claim is mounted. */}}
{{- define "kuberay-llm.batchApi.storageRoot" -}}
{{- default .Values.batchApi.storage.pvc.mountPath .Values.batchApi.storage.root }}
{{- end }}

{{/* envFrom items of the RayService's containers (and, through env_from_secrets, of the batch jobs'). */}}
{{- define "kuberay-llm.batchApi.envFrom" -}}
{{- range .Values.batchApi.envFromSecrets }}
- secretRef:
    name: {{ . }}
{{- end }}
{{- end }}

{{/*
Fails unless the values can run batches: the RayService is on, our ingress is in the path, and every
model has a GPU pool for its batch jobs (the Kubernetes runner runs vLLM on a GPU worker).
*/}}
{{- define "kuberay-llm.batchApi.check" -}}
{{- $b := .Values.batchApi }}
{{- if $b.enabled }}
{{- if not .Values.serving.enabled }}
{{- fail "batchApi.enabled: the Batch API is served by the RayService; set serving.enabled=true" }}
{{- end }}
{{- if .Values.serving.directStreaming }}
{{- fail "batchApi.enabled: serving.directStreaming bypasses the router that serves /v1/files and /v1/batches; set one of them false" }}
{{- end }}
{{- if $b.acceleratorType }}
{{- include "kuberay-llm.checkAccelerator" (list . $b.acceleratorType "batchApi.acceleratorType") }}
{{- else }}
{{- range $i, $m := .Values.serving.catalog.models }}
{{- if not $m.accelerator_type }}
{{- fail (printf "batchApi: serving.catalog.models[%d] (%s) has no accelerator_type, and batch jobs run vLLM on a GPU pool; set batchApi.acceleratorType" $i (dig "model_loading_config" "model_id" "" $m)) }}
{{- end }}
{{- end }}
{{- end }}
{{- $_ := include "kuberay-llm.batchApi.claim" . }}
{{- end }}
{{- end }}

{{/*
The `batches` args (serve_apps.batches.config.BatchesConfig, runner kubernetes). The batch jobs' pods
get the chart's security contexts, except a writable root file system: the RayJobs the service creates
mount no emptyDir at /tmp or ~/.cache, where Ray and vLLM write.
*/}}
{{- define "kuberay-llm.batchApi.args" -}}
{{- $b := .Values.batchApi }}
{{- $claim := include "kuberay-llm.batchApi.claim" . }}
{{- $k8s := dict
  "namespace" .Release.Namespace
  "name_prefix" (include "kuberay-llm.fullname" . | trunc 20 | trimSuffix "-")
  "image" (include "kuberay-llm.image" .)
  "image_pull_policy" .Values.image.pullPolicy
  "ray_version" .Values.rayVersion
  "node_selector_preset" .Values.accelerators.nodeSelectorPreset
  "head" (dict "cpu" (toString $b.head.cpu) "memory" (toString $b.head.memory))
  "worker" (dict "cpu" (toString $b.worker.cpu) "memory" (toString $b.worker.memory))
  "ttl_seconds_after_finished" (int $b.ttlSecondsAfterFinished)
  "env_from_secrets" $b.envFromSecrets
  "image_pull_secrets" .Values.imagePullSecrets
  "pod_security_context" .Values.podSecurityContext
  "security_context" (merge (dict "readOnlyRootFilesystem" false) (omit .Values.securityContext "readOnlyRootFilesystem"))
  "extra_labels" (include "kuberay-llm.selectorLabels" . | fromYaml)
}}
{{- with $b.acceleratorType }}{{ $_ := set $k8s "accelerator_type" . }}{{ end }}
{{- with $claim }}{{ $_ := set $k8s "storage_pvc" . }}{{ end }}
{{- $args := dict
  "enabled" true
  "runner" "kubernetes"
  "storage_root" (include "kuberay-llm.batchApi.storageRoot" .)
  "max_requests_per_file" (int $b.maxRequestsPerFile)
  "max_file_bytes" (int64 $b.maxFileBytes)
  "poll_interval_s" $b.pollIntervalSeconds
  "retry_delay_s" $b.retryDelaySeconds
  "job" $b.job
  "kubernetes" $k8s
}}
{{- toYaml $args }}
{{- end }}
