"""Run our serving app (``serve_apps.app:build_app``) on a private local Ray until SIGTERM.

Uses the project's own local launcher (``serve_apps.local.start``), so what is measured is
what ``make serve`` and the RayService run: the catalog -> LLMConfigs -> our OpenAI ingress.

    python -m bench.serve_ours --catalog catalog.json --port 8101
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--catalog", required=True, help="Model catalog, JSON or YAML.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from serve_apps import local

    if a.catalog.endswith(".json"):
        with open(a.catalog) as f:
            args = {"catalog": json.load(f)}
    else:
        args = {"catalog_path": a.catalog}
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    url = local.start(args, host=a.host, port=a.port)
    print(f"serving at {url}", flush=True)
    done.wait()
    local.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
