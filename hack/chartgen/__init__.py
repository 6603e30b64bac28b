"""Generators for the Helm chart and the rendered manifests (developer tooling: nothing here ships in the
package or the image, and the runtime packages import nothing from here).

The chart's inputs that Python owns are generated from the pydantic models, never hand-copied:

- ``charts/kuberay-llm/files/accelerators.yaml``, ``model-sources.yaml`` and ``batch-api-rbac.yaml``
  (``chart_files``): the accelerator catalog with every default filled in, the default model sources and
  ``builtin:`` names, and the Batch API's Role rules;
- ``charts/kuberay-llm/values.schema.json`` (``values_schema``): a closed schema whose ``serving.catalog``
  block is ``ModelCatalog``'s JSON schema and whose ``batchJobs.*.spec`` block is ``JobSpec``'s;
  descriptions come from ``values.yaml``;
- ``charts/kuberay-llm/README.md`` (``values_docs``): from ``README.md.gotmpl`` and the ``# --`` comments
  of ``values.yaml``;
- ``charts/kuberay-llm/Chart.lock`` (``chart_lock``): the lock of the pinned ``kuberay-operator``
  dependency, with the digest helm computes (``helm dependency build`` would need the chart repository,
  and this runs offline);
- ``manifests/`` (``manifests``): RayJobs for the seed workloads and RayServices, rendered with
  ``helm template`` (``helm``), and a kind cluster config whose nodes carry the catalog's labels.

``python -m hack.chartgen generate`` writes them all; ``check`` exits non-zero on drift.
"""
