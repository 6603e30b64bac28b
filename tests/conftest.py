"""Shared test setup: offline, quiet, and the default model's cache inside the repo."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Same defaults as the Makefile, so `pytest` alone behaves like `make test`.
os.environ.setdefault("KRLLM_CACHE_DIR", str(ROOT / ".cache"))
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# A real S3 API (moto) on loopback for the tests that use s3://. Its address goes into the
# environment now, at collection, so that Ray workers started later by any fixture inherit it.
_S3_PORT = _free_port()
_S3_ENV = {
    "AWS_ENDPOINT_URL": f"http://127.0.0.1:{_S3_PORT}",
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}
for _k, _v in _S3_ENV.items():
    os.environ.setdefault(_k, _v)


@pytest.fixture(scope="session")
def s3_server():
    """The moto S3 server (started once); yields its endpoint URL."""
    moto_server = pytest.importorskip("moto.server", reason="moto[server] is a dev dependency (pip install -e .[dev])")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=_S3_PORT, verbose=False)
    server.start()
    yield os.environ["AWS_ENDPOINT_URL"]
    server.stop()


@pytest.fixture
def s3(s3_server, request):
    """A fresh bucket for one test; yields its s3:// URI."""
    import re

    import boto3

    bucket = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:50].strip("-") + f"-{_free_port()}"
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=bucket)
    return f"s3://{bucket}"
