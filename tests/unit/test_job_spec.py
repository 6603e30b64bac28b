"""The job spec: closed, described, YAML-loadable, overridable, failing fast with the field's name."""

from __future__ import annotations

import pytest

from jobs.spec import JobSpec
from llmkit.config import ConfigError, StrictModel


def _write(tmp_path, text):
    path = tmp_path / "job.yaml"
    path.write_text(text)
    return path


def test_minimal_spec_gets_defaults(tmp_path):
    spec = JobSpec.from_yaml(_write(tmp_path, "output: {path: /tmp/x}\n"))
    assert spec.model.source == "builtin:smollm2-135m-instruct"
    assert spec.workload.name == "chat"
    assert spec.resume.mode == "resume"
    assert spec.errors.on_row_error == "record"


def test_every_field_is_described():
    def walk(model: type[StrictModel], where: str):
        for name, field in model.model_fields.items():
            assert field.description, f"{where}.{name} has no description"
            ann = field.annotation
            for sub in getattr(ann, "__args__", ()) + (ann,):
                if isinstance(sub, type) and issubclass(sub, StrictModel):
                    walk(sub, f"{where}.{name}")

    walk(JobSpec, "JobSpec")


@pytest.mark.parametrize(
    ("yaml_text", "field"),
    [
        ("output: {path: x}\nengine: {bogus: 1}\n", "engine.bogus"),
        ("output: {path: x}\nengine: {concurrency: 0}\n", "engine.concurrency"),
        ("output: {path: x}\nengine: {accelerator_type: Z9000}\n", "engine.accelerator_type"),
        ("output: {path: x}\nsampling: {temperature: -1}\n", "sampling.temperature"),
        ("output: {path: x}\nname: Not_A_DNS_Name\n", "name"),
        ("engine: {}\n", "output"),
        ("output: {path: x, format: csv}\n", "output.format"),
        ("output: {path: x}\nengine: {engine_kwargs: {model: foo}}\n", "engine.engine_kwargs"),
    ],
)
def test_invalid_specs_name_the_field(tmp_path, yaml_text, field):
    with pytest.raises(ConfigError) as err:
        JobSpec.from_yaml(_write(tmp_path, yaml_text))
    assert f"  - {field}:" in str(err.value)


def test_unknown_workload_is_a_config_error_naming_the_field(tmp_path, capsys):
    from jobs.__main__ import main
    from jobs.workloads import resolve_workload

    spec = JobSpec.from_yaml(_write(tmp_path, "output: {path: x}\nworkload: {name: poetry}\n"))
    with pytest.raises(ConfigError, match="^workload.name: unknown workload 'poetry'"):
        resolve_workload(spec)
    assert main(["validate", "-c", str(tmp_path / "job.yaml")]) == 2
    assert "workload.name: unknown workload" in capsys.readouterr().err


def test_unknown_workload_option_fails_fast(tmp_path):
    from jobs.workloads import get_workload

    spec = JobSpec.from_yaml(
        _write(tmp_path, "output: {path: x}\nworkload: {name: sentiment, options: {lables: [a]}}\n")
    )
    with pytest.raises(ConfigError, match="lables"):
        get_workload("sentiment")(spec)


def test_command_line_overrides(tmp_path):
    path = _write(tmp_path, "output: {path: x}\nengine: {engine_kwargs: {max_model_len: 1024}}\n")
    spec = JobSpec.from_yaml(
        path,
        [
            "engine.batch_size=8",
            "engine.engine_kwargs.enable_chunked_prefill=true",
            "sampling.stop=[END]",
            "engine.concurrency=[1, 3]",
            "output.path=s3://bucket/out",
        ],
    )
    assert spec.engine.batch_size == 8
    assert spec.engine.engine_kwargs == {"max_model_len": 1024, "enable_chunked_prefill": True}
    assert spec.sampling.stop == ["END"]
    assert spec.engine.concurrency == (1, 3)
    assert spec.output.path == "s3://bucket/out"


def test_bad_override_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="key.path=value"):
        JobSpec.from_yaml(_write(tmp_path, "output: {path: x}\n"), ["engine.batch_size"])
    with pytest.raises(ConfigError, match="engine.batch_size"):
        JobSpec.from_yaml(_write(tmp_path, "output: {path: x}\n"), ["engine.batch_size=-3"])


def test_extra_sampling_params_pass_through(tmp_path):
    spec = JobSpec.from_yaml(
        _write(tmp_path, "output: {path: x}\nsampling: {repetition_penalty: 1.1, ignore_eos: true}\n")
    )
    dumped = spec.sampling.model_dump()
    assert dumped["repetition_penalty"] == 1.1 and dumped["ignore_eos"] is True


def test_examples_are_valid():
    from pathlib import Path

    examples = sorted(Path(__file__).resolve().parents[2].glob("jobs/examples/*.yaml"))
    assert len(examples) >= 6
    for path in examples:
        JobSpec.from_yaml(path)


def test_cli_validate_and_errors(tmp_path, capsys):
    from jobs.__main__ import main

    good = _write(tmp_path, "output: {path: x}\n")
    assert main(["validate", "-c", str(good), "--set", "engine.batch_size=4"]) == 0
    assert "batch_size: 4" in capsys.readouterr().out
    assert main(["validate", "-c", str(good), "--set", "engine.nope=4"]) == 2
    assert "engine.nope: unknown field" in capsys.readouterr().err
