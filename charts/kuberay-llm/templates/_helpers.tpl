{{/*
Names and labels.
*/}}
{{- define "kuberay-llm.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kuberay-llm.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "kuberay-llm.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kuberay-llm.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every object; helm.sh/chart stays out of selectors. */}}
{{- define "kuberay-llm.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "kuberay-llm.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The image reference. Fails when no image is set: no default names an image anyone can pull. */}}
{{- define "kuberay-llm.image" -}}
{{- $img := .Values.image }}
{{- $repo := required "image.repository is required: build and push the image (make image-gpu image-push IMAGE_KIND=gpu IMAGE_REPOSITORY=<registry>/kuberay-llm) or use a release's (ghcr.io/<owner>/kuberay-llm), then --set image.repository=...; see docs/quickstart.md#the-images" $img.repository }}
{{- if $img.digest }}
{{- printf "%s@%s" $repo $img.digest }}
{{- else }}
{{- printf "%s:%s" $repo (required "image.tag (or image.digest) is required, e.g. 0.1.0-gpu" $img.tag) }}
{{- end }}
{{- end }}

{{/*
The accelerator catalog (files/accelerators.yaml, generated from llmkit/accelerators.yaml).
*/}}
{{- define "kuberay-llm.catalog" -}}
{{- .Files.Get "files/accelerators.yaml" }}
{{- end }}

{{/* Fails unless the accelerator type is in the catalog. Args: (list $root $type $where). */}}
{{- define "kuberay-llm.checkAccelerator" -}}
{{- $root := index . 0 }}{{- $type := index . 1 }}{{- $where := index . 2 }}
{{- $cat := (include "kuberay-llm.catalog" $root | fromYaml).accelerators }}
{{- if not (hasKey $cat $type) }}
{{- fail (printf "%s: accelerator type %q is not in the accelerator catalog (files/accelerators.yaml); known types: %s" $where $type (keys $cat | sortAlpha | join ", ")) }}
{{- end }}
{{- end }}

{{/*
Volumes and mounts shared by every Ray pod.
*/}}
{{- define "kuberay-llm.cacheDir" -}}
{{- if .Values.modelCache.enabled }}{{ .Values.modelCache.mountPath }}{{ else }}/home/ray/.cache{{ end }}
{{- end }}

{{- define "kuberay-llm.env" -}}
{{- $cache := include "kuberay-llm.cacheDir" . }}
- name: KRLLM_CACHE_DIR
  value: {{ printf "%s/kuberay-llm" $cache | quote }}
- name: HF_HOME
  value: {{ printf "%s/huggingface" $cache | quote }}
- name: XDG_CACHE_HOME
  value: /home/ray/.cache
{{- $compile := ternary $cache "/home/ray/.cache" (and .Values.modelCache.enabled .Values.modelCache.compileCache) }}
- name: VLLM_CACHE_ROOT
  value: {{ printf "%s/vllm" $compile | quote }}
- name: TRITON_CACHE_DIR
  value: {{ printf "%s/triton" $compile | quote }}
- name: VLLM_CONFIG_ROOT
  value: /home/ray/.cache/vllm-config
- name: VLLM_NO_USAGE_STATS
  value: "1"
- name: RAY_USAGE_STATS_ENABLED
  value: "0"
# Measured on an H100 (bench/README.md): Serve LLM throughput 0.61x -> 0.95x of a bare vLLM
# server, median TTFT 1.90x -> 0.78x. Only Serve processes read it.
- name: RAY_SERVE_THROUGHPUT_OPTIMIZED
  value: "1"
{{- if .Values.serving.haproxy.enabled }}
- name: RAY_SERVE_ENABLE_HA_PROXY
  value: "1"
- name: RAY_SERVE_HAPROXY_MAXCONN
  value: {{ .Values.serving.haproxy.maxConnections | quote }}
{{- end }}
{{- if .Values.serving.directStreaming }}
- name: RAY_SERVE_LLM_ENABLE_DIRECT_STREAMING
  value: "1"
{{- end }}
{{- if .Values.hfToken.existingSecret }}
- name: HF_TOKEN_PATH
  value: /etc/kuberay-llm/hf-token/token
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Args: (dict "root" $ "shmSize" "2Gi" "extraVolumes" list) */}}
{{- define "kuberay-llm.volumes" -}}
{{- $root := .root }}
- name: tmp
  emptyDir: {}
- name: home-cache
  emptyDir: {}
- name: dshm
  emptyDir:
    medium: Memory
    sizeLimit: {{ .shmSize }}
{{- if $root.Values.modelCache.enabled }}
- name: model-cache
  persistentVolumeClaim:
    claimName: {{ default (printf "%s-model-cache" (include "kuberay-llm.fullname" $root)) $root.Values.modelCache.existingClaim }}
{{- end }}
{{- if $root.Values.hfToken.existingSecret }}
- name: hf-token
  secret:
    secretName: {{ $root.Values.hfToken.existingSecret }}
    defaultMode: 288
    items:
      - key: {{ $root.Values.hfToken.key }}
        path: token
{{- end }}
{{- with .extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- with $root.Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "kuberay-llm.volumeMounts" -}}
{{- $root := .root }}
- name: tmp
  mountPath: /tmp
- name: home-cache
  mountPath: /home/ray/.cache
- name: dshm
  mountPath: /dev/shm
{{- if $root.Values.modelCache.enabled }}
- name: model-cache
  mountPath: {{ $root.Values.modelCache.mountPath }}
{{- end }}
{{- if $root.Values.hfToken.existingSecret }}
- name: hf-token
  mountPath: /etc/kuberay-llm/hf-token
  readOnly: true
{{- end }}
{{- with .extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- with $root.Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
A Ray pod template (head or worker).
Args: dict with root, component (head|worker), containerName, resources, ports (list),
nodeSelector, tolerations, shmSize, extraVolumes, extraVolumeMounts, labels (dict), automountToken
(only the head, whose autoscaler sidecar talks to the Kubernetes API, keeps its service account token),
serviceAccountName (set: the pod runs as that account, with its token; the Batch API's RayService pods),
envFrom (list of envFrom items of the container).
*/}}
{{- define "kuberay-llm.podTemplate" -}}
{{- $root := .root }}
metadata:
  labels:
    {{- include "kuberay-llm.selectorLabels" $root | trim | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
    {{- with .labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
    {{- with $root.Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $root.Values.podAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- if .serviceAccountName }}
  serviceAccountName: {{ .serviceAccountName }}
  automountServiceAccountToken: true
  {{- else if not .automountToken }}
  automountServiceAccountToken: false
  {{- end }}
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- range . }}
    - name: {{ . }}
    {{- end }}
  {{- end }}
  securityContext:
    {{- toYaml $root.Values.podSecurityContext | nindent 4 }}
  {{- with .nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: {{ .containerName }}
      image: {{ include "kuberay-llm.image" $root }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      securityContext:
        {{- toYaml $root.Values.securityContext | nindent 8 }}
      resources:
        {{- toYaml .resources | nindent 8 }}
      env:
        {{- include "kuberay-llm.env" $root | trim | nindent 8 }}
      {{- with .envFrom }}
      envFrom:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .ports }}
      ports:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      volumeMounts:
        {{- include "kuberay-llm.volumeMounts" (dict "root" $root "extraVolumeMounts" .extraVolumeMounts) | trim | nindent 8 }}
  volumes:
    {{- include "kuberay-llm.volumes" (dict "root" $root "shmSize" .shmSize "extraVolumes" .extraVolumes) | trim | nindent 4 }}
{{- end }}

{{/*
The head group, shared by the RayService and the RayJobs: no GPUs, num-cpus 0.
Args: dict with root, extraVolumes, extraVolumeMounts, serve (bool), serviceAccountName, envFrom (podTemplate's).
*/}}
{{- define "kuberay-llm.headGroup" -}}
{{- $root := .root }}
{{- $ports := list (dict "name" "gcs" "containerPort" 6379) (dict "name" "dashboard" "containerPort" 8265) (dict "name" "client" "containerPort" 10001) (dict "name" "metrics" "containerPort" 8080) }}
{{- if .serve }}{{- $ports = append $ports (dict "name" "serve" "containerPort" 8000) }}{{- end }}
{{- $res := deepCopy $root.Values.head.resources }}
rayStartParams:
  {{- $params := merge (deepCopy $root.Values.head.rayStartParams) (dict "num-cpus" "0" "num-gpus" "0" "dashboard-host" "0.0.0.0" "metrics-export-port" "8080") }}
  {{- toYaml $params | nindent 2 }}
template:
  {{- include "kuberay-llm.podTemplate" (dict "root" $root "component" "ray-head" "containerName" "ray-head" "automountToken" $root.Values.autoscaler.enabled "resources" $res "ports" $ports "nodeSelector" $root.Values.head.nodeSelector "tolerations" $root.Values.head.tolerations "shmSize" $root.Values.head.shmSize "extraVolumes" .extraVolumes "extraVolumeMounts" .extraVolumeMounts "serviceAccountName" .serviceAccountName "envFrom" .envFrom) | trim | nindent 2 }}
{{- end }}

{{/*
GPUs of one engine (a Serve replica, a batch engine): tensor x pipeline parallel size, from a catalog
entry or a job's engine_kwargs. The chart's one definition (Python's: llmkit.accelerators.gpus_per_engine).
*/}}
{{- define "kuberay-llm.engineGpus" -}}
{{- mul (int (default 1 .tensor_parallel_size)) (int (default 1 .pipeline_parallel_size)) }}
{{- end }}

{{/*
One worker group on an accelerator pool (or the CPU pool), shared by the RayService and the RayJobs.
Each pod holds one engine (a Serve replica, or a Ray Data LLM engine; or a job's engines_per_gpu
engines, which share one GPU): it requests exactly that engine's GPUs, so the GPUs a group requests at
max scale are the GPUs its engines use.
Args: dict with
  root
  pool:        accelerator type from the catalog, or "cpu"
  gpus:        GPUs of one engine, tensor x pipeline parallel size (ignored for cpu)
  minReplicas, maxReplicas, replicas
  extraVolumes, extraVolumeMounts
  where:       text for error messages
The group's Ray resources are KubeRay's first-class `resources` field (the operator turns it into
`ray start` flags; the autoscaler reads it): its GPUs and accelerator_type:<TYPE>, so the autoscaler
can start it from zero for replicas or tasks that need that accelerator (kuberay#863).
*/}}
{{- define "kuberay-llm.workerGroup" -}}
{{- $root := .root }}
{{- $pool := .pool }}
{{- $min := int .minReplicas }}{{- $max := int .maxReplicas }}{{- $replicas := int .replicas }}
{{- if lt $min 0 }}{{ fail (printf "%s: minReplicas must be >= 0, got %d" .where $min) }}{{ end }}
{{- if lt $max 1 }}{{ fail (printf "%s: maxReplicas must be >= 1, got %d" .where $max) }}{{ end }}
{{- if gt $min $max }}{{ fail (printf "%s: minReplicas (%d) > maxReplicas (%d)" .where $min $max) }}{{ end }}
{{- if or (lt $replicas $min) (gt $replicas $max) }}{{ fail (printf "%s: replicas (%d) must lie between minReplicas (%d) and maxReplicas (%d)" .where $replicas $min $max) }}{{ end }}
{{- $nodeSelector := dict }}
{{- $tolerations := list }}
{{- $rayResources := dict }}
{{- $resources := dict }}
{{- $shm := "" }}
{{- $groupName := "cpu" }}
{{- $labels := dict "kuberay-llm/pool" $pool }}
{{- if eq $pool "cpu" }}
{{- $cpu := $root.Values.cpuPool }}
{{- $nodeSelector = $cpu.nodeSelector }}
{{- $tolerations = $cpu.tolerations }}
{{- $resources = dict "requests" (dict "cpu" $cpu.cpu "memory" $cpu.memory) "limits" (dict "cpu" $cpu.cpu "memory" $cpu.memory) }}
{{- $rayResources = dict "GPU" "0" }}
{{- $shm = $cpu.shmSize }}
{{- else }}
{{- include "kuberay-llm.checkAccelerator" (list $root $pool .where) }}
{{- $acc := index (include "kuberay-llm.catalog" $root | fromYaml).accelerators $pool }}
{{- $preset := $root.Values.accelerators.nodeSelectorPreset }}
{{- if not (hasKey $acc.nodeSelectors $preset) }}{{ fail (printf "%s: accelerator type %q has no %q node labels in the catalog" .where $pool $preset) }}{{ end }}
{{- $p := mergeOverwrite (deepCopy $root.Values.accelerators.defaults) (deepCopy (default dict (index $root.Values.accelerators.pools $pool))) }}
{{- $gpus := int .gpus }}
{{- if lt $gpus 1 }}{{ fail (printf "%s: GPUs per engine must be >= 1, got %d" .where $gpus) }}{{ end }}
{{- if and $p.gpusPerNode (gt $gpus (int $p.gpusPerNode)) }}{{ fail (printf "%s: one engine needs %d GPUs (tensor x pipeline parallel size) but accelerators.pools.%s.gpusPerNode is %d, so its pod could never schedule" .where $gpus $pool (int $p.gpusPerNode)) }}{{ end }}
{{- $nodeSelector = mergeOverwrite (deepCopy (index $acc.nodeSelectors $preset)) (default dict $p.nodeSelector) }}
{{- $tolerations = concat $acc.tolerations $root.Values.accelerators.extraTolerations (default list $p.tolerations) }}
{{- $resources = dict "requests" (dict "cpu" $p.cpu "memory" $p.memory "nvidia.com/gpu" $gpus) "limits" (dict "cpu" $p.cpu "memory" $p.memory "nvidia.com/gpu" $gpus) }}
{{- $rayResources = dict "GPU" (toString $gpus) (printf "accelerator_type:%s" $pool) "1" }}
{{- $shm = $p.shmSize }}
{{- $groupName = printf "%s-%dgpu" ($pool | lower) $gpus }}
{{- $_ := set $labels "kuberay-llm/accelerator-type" $pool }}
{{- end }}
- groupName: {{ $groupName }}
  replicas: {{ $replicas }}
  minReplicas: {{ $min }}
  maxReplicas: {{ $max }}
  rayStartParams: {}
  resources:
    {{- toYaml $rayResources | nindent 4 }}
  template:
    {{- include "kuberay-llm.podTemplate" (dict "root" $root "component" "ray-worker" "containerName" "ray-worker" "resources" $resources "ports" (list (dict "name" "metrics" "containerPort" 8080)) "nodeSelector" $nodeSelector "tolerations" $tolerations "shmSize" $shm "extraVolumes" .extraVolumes "extraVolumeMounts" .extraVolumeMounts "labels" $labels) | trim | nindent 4 }}
{{- end }}

{{/* autoscalerOptions shared by the RayService and the RayJobs. */}}
{{- define "kuberay-llm.autoscaling" -}}
enableInTreeAutoscaling: {{ .Values.autoscaler.enabled }}
{{- if .Values.autoscaler.enabled }}
autoscalerOptions:
  upscalingMode: {{ .Values.autoscaler.upscalingMode }}
  idleTimeoutSeconds: {{ int .Values.autoscaler.idleTimeoutSeconds }}
  resources:
    {{- toYaml .Values.autoscaler.resources | nindent 4 }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  volumeMounts:
    - name: tmp
      mountPath: /tmp
{{- end }}
{{- end }}

{{/*
Replica bounds of one catalog entry, as Ray Serve reads its LLMConfig `deployment_config`: a fixed
`num_replicas`, or `autoscaling_config` min/max (Serve's defaults: 1 and 1). `num_replicas: auto` must
state `autoscaling_config.max_replicas`, since it sizes the worker group (Serve's own default is 100).
Args: (dict "deployment" $deploymentConfig "where" $where). Output: YAML {min, max}.
*/}}
{{- define "kuberay-llm.replicaBounds" -}}
{{- $d := .deployment }}
{{- $a := default dict $d.autoscaling_config }}
{{- $n := $d.num_replicas }}
{{- if and (hasKey $d "num_replicas") (not (kindIs "string" $n)) }}
{{- if lt (int $n) 1 }}{{ fail (printf "%s: deployment_config.num_replicas must be >= 1, got %d" .where (int $n)) }}{{ end }}
min: {{ int $n }}
max: {{ int $n }}
{{- else }}
{{- if and (eq (toString $n) "auto") (not (hasKey $a "max_replicas")) }}
{{- fail (printf "%s: deployment_config.num_replicas auto needs autoscaling_config.max_replicas, which sizes the worker group" .where) }}
{{- end }}
{{- $min := int (ternary $a.min_replicas 1 (hasKey $a "min_replicas")) }}
{{- $max := int (ternary $a.max_replicas 1 (hasKey $a "max_replicas")) }}
{{- if lt $min 0 }}{{ fail (printf "%s: deployment_config.autoscaling_config.min_replicas must be >= 0, got %d" .where $min) }}{{ end }}
{{- if lt $max 1 }}{{ fail (printf "%s: deployment_config.autoscaling_config.max_replicas must be >= 1, got %d" .where $max) }}{{ end }}
{{- if gt $min $max }}{{ fail (printf "%s: deployment_config.autoscaling_config.min_replicas (%d) > max_replicas (%d)" .where $min $max) }}{{ end }}
min: {{ $min }}
max: {{ $max }}
{{- end }}
{{- end }}

{{/*
Worker groups of the RayService: one per accelerator type and GPUs per replica named in the catalog
(models sharing both share the group, whose bounds are the sum of theirs), or the CPU pool for
models without a type in cpu mode. Each pod holds one replica's GPUs.
Output: YAML list of groups.
*/}}
{{- define "kuberay-llm.servingGroups" -}}
{{- $root := . }}
{{- $catalog := .Values.serving.catalog }}
{{- $device := default "auto" $catalog.device }}
{{- $groups := dict }}
{{- range $i, $m := $catalog.models }}
{{- $where := printf "serving.catalog.models[%d] (%s)" $i (dig "model_loading_config" "model_id" "" $m) }}
{{- $pool := "" }}
{{- $gpus := 0 }}
{{- if $m.accelerator_type }}
{{- $pool = $m.accelerator_type }}
{{- include "kuberay-llm.checkAccelerator" (list $root $pool $where) }}
{{- if eq $device "cpu" }}{{ fail (printf "%s: names accelerator_type %q but the catalog's device is cpu" $where $pool) }}{{ end }}
{{- $gpus = include "kuberay-llm.engineGpus" (default dict $m.engine_kwargs) | int }}
{{- else if eq $device "gpu" }}
{{- fail (printf "%s: needs an accelerator_type from the accelerator catalog to get a GPU worker group (device: gpu)" $where) }}
{{- else }}
{{- $pool = "cpu" }}
{{- end }}
{{- $bounds := include "kuberay-llm.replicaBounds" (dict "deployment" (default dict $m.deployment_config) "where" $where) | fromYaml }}
{{- $key := printf "%s/%03d" $pool $gpus }}
{{- $g := default (dict "pool" $pool "gpus" $gpus "min" 0 "max" 0 "where" $where) (get $groups $key) }}
{{- $_ := set $g "min" (add $g.min (int $bounds.min)) }}
{{- $_ = set $g "max" (add $g.max (int $bounds.max)) }}
{{- $_ = set $groups $key $g }}
{{- end }}
{{- range $key := keys $groups | sortAlpha }}
{{- $g := get $groups $key }}
{{- $o := default dict (index $root.Values.serving.workerGroups $g.pool) }}
{{- $min := int (ternary $g.min $o.minReplicas (not (hasKey $o "minReplicas"))) }}
{{- $max := int (default (max $g.max 1) $o.maxReplicas) }}
{{- $replicas := int (ternary $min $o.replicas (not (hasKey $o "replicas"))) }}
{{ include "kuberay-llm.workerGroup" (dict "root" $root "pool" $g.pool "gpus" $g.gpus "minReplicas" $min "maxReplicas" $max "replicas" $replicas "where" (printf "serving worker group %s (%s)" $g.pool $g.where)) }}
{{- end }}
{{- end }}

{{/* Name of a batch job's objects. Args: (list $root $jobName) */}}
{{- define "kuberay-llm.jobName" -}}
{{- printf "%s-%s" (include "kuberay-llm.fullname" (index . 0)) (index . 1) | trunc 47 | trimSuffix "-" }}
{{- end }}

{{/*
The worker group of a batch job, from its spec's engine: the accelerator_type pool, or the CPU pool
(device cpu, or an http engine that only sends requests). One pod per engine (engine.concurrency),
each with one engine's GPUs (engine_kwargs tensor x pipeline parallel size).
Args: (dict "root" $ "name" $name "job" $job "extraVolumes" list "extraVolumeMounts" list)
*/}}
{{- define "kuberay-llm.jobGroup" -}}
{{- $root := .root }}
{{- $job := .job }}
{{- $where := printf "batchJobs.%s" .name }}
{{- $engine := default dict $job.spec.engine }}
{{- $w := default dict $job.workers }}
{{- $kw := default dict $engine.engine_kwargs }}
{{- $pool := "cpu" }}
{{- $gpus := 0 }}
{{- if eq (default "vllm" $engine.kind) "http" }}
{{- $pool = "cpu" }}
{{- else if $engine.accelerator_type }}
{{- $pool = $engine.accelerator_type }}
{{- include "kuberay-llm.checkAccelerator" (list $root $pool (printf "%s.spec.engine.accelerator_type" $where)) }}
{{- if eq (default "auto" $engine.device) "cpu" }}{{ fail (printf "%s.spec.engine: names accelerator_type %q but device is cpu" $where $pool) }}{{ end }}
{{- $gpus = include "kuberay-llm.engineGpus" $kw | int }}
{{- else if ne (default "auto" $engine.device) "cpu" }}
{{- fail (printf "%s.spec.engine: set accelerator_type (a type of the accelerator catalog) to get a GPU worker group, or device: cpu for the CPU pool" $where) }}
{{- end }}
{{- $c := default 1 $engine.concurrency }}
{{- $min := 0 }}{{- $max := 0 }}
{{- if kindIs "slice" $c }}
{{- $min = int (index $c 0) }}{{- $max = int (index $c 1) }}
{{- else }}
{{- $min = int $c }}{{- $max = int $c }}
{{- end }}
{{- $packed := int (default 1 $engine.engines_per_gpu) }}
{{- if and (gt $packed 1) (ne $pool "cpu") }}
{{- /* engines_per_gpu one-GPU engines share a pod's GPU (jobs.engine.job_gpus): ceil(engines / packed) pods */}}
{{- $min = div (add $min $packed -1) $packed }}{{- $max = div (add $max $packed -1) $packed }}
{{- end }}
{{- $min = int (ternary $min $w.minReplicas (not (hasKey $w "minReplicas"))) }}
{{- $max = int (default $max $w.maxReplicas) }}
{{- $replicas := int (ternary (max $min 1 | min $max) $w.replicas (not (hasKey $w "replicas"))) }}
{{- include "kuberay-llm.workerGroup" (dict "root" $root "pool" $pool "gpus" $gpus "minReplicas" $min "maxReplicas" $max "replicas" $replicas "where" $where "extraVolumes" .extraVolumes "extraVolumeMounts" .extraVolumeMounts) }}
{{- end }}
