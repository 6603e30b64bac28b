"""The jobs CLI: ``python -m jobs run --config job.yaml [--set key.path=value ...]``."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from llmkit.config import ConfigError

logger = logging.getLogger("jobs")
# Exit codes: 0 done, 1 the job failed, 2 a bad spec or missing file, 75 the output is another run's
# for now (try again later), 143 stopped by SIGTERM.
EXIT_OUTPUT_IN_USE = 75


def _load(args: argparse.Namespace):
    from jobs.spec import JobSpec

    return JobSpec.from_yaml(args.config, args.set or [])


def _show_results(summary, limit: int) -> None:
    from jobs import io

    out = summary.output
    print(
        f"\n== {summary.job}: {summary.rows_ok} ok, {summary.rows_failed} failed, "
        f"{summary.input_tokens} input / {summary.output_tokens} output tokens, "
        f"{summary.run['wall_time_s']:.1f} s =="
    )
    if limit:
        for r in io.head(summary.output["summary"].rsplit("/", 1)[0], io.DATA_DIR, limit):
            body = (r.get("response") or {}).get("body") or {}
            if body:
                answer = body.get("choices", [{}])[0].get("message", {}).get("content", "")
                print(f"- [{r.get('custom_id')}] {answer!r}")
                continue
            question = next((r[k] for k in ("prompt", "question", "text", "article") if isinstance(r.get(k), str)), "")
            answer = r.get("label") or r.get("generated_text", "")
            print(f"- {question[:70]!r}\n    -> {answer.strip()[:200]!r}")
    print(f"results: {out['results']}\nerrors:  {out['errors']}\nsummary: {out['summary']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobs", description="LLM batch inference on Ray Data LLM.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("run", "run a job"), ("validate", "check a job spec and print it with defaults")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--config", "-c", required=True, help="job spec YAML")
        p.add_argument("--set", "-s", action="append", metavar="KEY.PATH=VALUE", help="override one field (repeatable)")
        if name == "run":
            p.add_argument("--show", type=int, default=5, help="print this many results at the end")
    d = sub.add_parser("show-defaults", help="print the engine defaults for a device")
    d.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    sub.add_parser("workloads", help="list the workloads")
    args = parser.parse_args(argv)
    from llmkit import logs

    logs.setup()

    try:
        if args.command == "workloads":
            from jobs.workloads import REGISTRY

            for name, cls in REGISTRY.items():
                print(f"{name:14s} {cls.description}")
            return 0
        if args.command == "show-defaults":
            import dataclasses

            from jobs.engine import defaults_for

            print(json.dumps(dataclasses.asdict(defaults_for(args.device)), indent=2))
            return 0
        spec = _load(args)
        from jobs.workloads import resolve_workload

        resolve_workload(spec)
        if args.command == "validate":
            print(spec.to_yaml(), end="")
            return 0
        from jobs.pipeline import JobCancelled, JobFailed, run

        try:
            summary = run(spec)
        except JobFailed as e:
            logger.error("job failed: %s", e)
            return 1
        except JobCancelled as e:
            logger.warning("%s", e)
            return 143
        _show_results(summary, args.show)
        return 0
    except ConfigError as e:
        from jobs.lease import LeaseHeld

        print(f"error: {e}", file=sys.stderr)
        # A held lease is not the spec's fault: another run is writing this output (sysexits' EX_TEMPFAIL).
        return EXIT_OUTPUT_IN_USE if isinstance(e, LeaseHeld) else 2


if __name__ == "__main__":
    sys.exit(main())
