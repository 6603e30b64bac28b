"""The OpenAI Batch API (``/v1/files``, ``/v1/batches``) on the serving endpoint.

Each batch runs our batch job (``python -m jobs run``, workload ``openai_batch``): on local
Ray in embedded mode, as a KubeRay RayJob on Kubernetes. See docs/serving.md.
"""
