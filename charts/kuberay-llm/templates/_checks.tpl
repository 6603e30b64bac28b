{{/*
Checks that fail `helm template` / `helm install` with a one-line message, before anything reaches
the cluster. The facts they compare against come from Python (files/model-sources.yaml, generated).
*/}}

{{/* The model sources the pydantic models give an entry that names none, and the builtin models. */}}
{{- define "kuberay-llm.modelSources" -}}
{{- .Files.Get "files/model-sources.yaml" }}
{{- end }}

{{/*
A builtin:<name> source resolves inside the pod, from the image: the image must bake it.
Args: (list $root $source $where)
*/}}
{{- define "kuberay-llm.checkModelSource" -}}
{{- $root := index . 0 }}{{- $src := index . 1 }}{{- $where := index . 2 }}
{{- if hasPrefix "builtin:" $src }}
{{- $name := trimPrefix "builtin:" $src }}
{{- $baked := default list $root.Values.image.bakedModels }}
{{- if not (has $name $baked) }}
{{- fail (printf "%s: source %q is not baked into the image (image.bakedModels: [%s]); use a Hugging Face id (downloaded into HF_HOME, the model cache), or bake it (make image-gpu BAKE_MODEL_GPU=%s) and list %q in image.bakedModels" $where $src (join ", " $baked) $src $name) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
A job's output folder must outlive the job's Ray cluster: a bucket, or a folder on a mounted volume.
Args: (list $root $path $where)
*/}}
{{- define "kuberay-llm.checkOutputPath" -}}
{{- $root := index . 0 }}{{- $path := index . 1 }}{{- $where := index . 2 }}
{{- if or (hasPrefix "file://" $path) (not (regexMatch "^[A-Za-z][A-Za-z0-9+.-]*://" $path)) }}
{{- $local := trimPrefix "file://" $path }}
{{- $mounts := list }}
{{- if $root.Values.results.enabled }}{{ $mounts = append $mounts $root.Values.results.mountPath }}{{ end }}
{{- if $root.Values.modelCache.enabled }}{{ $mounts = append $mounts $root.Values.modelCache.mountPath }}{{ end }}
{{- range $root.Values.extraVolumeMounts }}{{ $mounts = append $mounts .mountPath }}{{ end }}
{{- $onVolume := false }}
{{- range $mounts }}
{{- if hasPrefix (printf "%s/" (trimSuffix "/" .)) $local }}{{ $onVolume = true }}{{ end }}
{{- end }}
{{- if not $onVolume }}
{{- fail (printf "%s: %q is a folder inside the job's Ray pods, deleted with its Ray cluster; write to a bucket (s3://, gs://) or under a mounted volume (results.enabled mounts a claim at %s)" $where $path $root.Values.results.mountPath) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Overrides are applied by the jobs CLI inside the cluster; the chart sizes the worker group and checks
the model and output from the spec, so the keys it reads must be set in the spec itself.
Args: (list $override $where)
*/}}
{{- define "kuberay-llm.checkOverride" -}}
{{- $key := index (splitList "=" (index . 0)) 0 }}
{{- if regexMatch "^(engine|engine\\.(kind|device|accelerator_type|concurrency|engine_kwargs)|engine\\.engine_kwargs\\.(tensor|pipeline)_parallel_size|model|model\\.source|output|output\\.path)$" $key }}
{{- fail (printf "%s: %q sizes the worker group or is checked by the chart; set it in the job's spec, not as an override" (index . 1) $key) }}
{{- end }}
{{- end }}
