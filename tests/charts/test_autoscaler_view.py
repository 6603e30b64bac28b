"""What the Ray autoscaler itself sees: each rendered RayService / RayJob cluster spec run through
Ray 2.60's KubeRay autoscaling-config derivation (the code of the autoscaler sidecar). Every GPU group
must advertise its GPUs and the `accelerator_type:<TYPE>` resource, so the autoscaler can start that
group from zero for replicas or tasks that need the type (kuberay#863); the head advertises no CPU or GPU."""

import pytest
from chart_helpers import CR_KINDS, cluster_spec

from llmkit.accelerators import ray_resource

pytestmark = pytest.mark.charts


def test_autoscaler_sees_accelerator_resources(all_rendered):
    from ray.autoscaler._private.kuberay.autoscaling_config import _derive_autoscaling_config_from_ray_cr

    checked = 0
    for name, r in all_rendered.items():
        for cr in r.docs:
            if cr["kind"] not in CR_KINDS:
                continue
            spec = cluster_spec(cr)
            ray_cr = {"metadata": {"name": cr["metadata"]["name"], "namespace": "ns"}, "spec": spec}
            config = _derive_autoscaling_config_from_ray_cr(ray_cr)
            types = config["available_node_types"]
            head = types["headgroup"]["resources"]
            assert head.get("CPU", 0) == 0 and head.get("GPU", 0) == 0, (name, head)
            for group in spec["workerGroupSpecs"]:
                node = types[group["groupName"]]
                assert (node["min_workers"], node["max_workers"]) == (group["minReplicas"], group["maxReplicas"])
                limits = group["template"]["spec"]["containers"][0]["resources"]["limits"]
                acc = group["template"]["metadata"]["labels"].get("kuberay-llm/accelerator-type")
                if acc:
                    assert node["resources"]["GPU"] == limits["nvidia.com/gpu"], name
                    assert node["resources"][ray_resource(acc)] == 1, (name, node["resources"])
                else:
                    assert node["resources"].get("GPU", 0) == 0
                    assert not [k for k in node["resources"] if k.startswith("accelerator_type:")]
                checked += 1
    assert checked >= 15
