"""``python -m serve_apps serve|validate --config catalog.yaml``, ``query``: the local serving commands (the same
``--config`` style as ``python -m jobs run|validate --config job.yaml``)."""

from __future__ import annotations

import argparse
import logging
import sys

from llmkit.config import ConfigError


def main(argv: list[str] | None = None) -> int:
    from serve_apps import local

    parser = argparse.ArgumentParser(prog="python -m serve_apps", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p_serve = sub.add_parser("serve", help="Run the OpenAI-compatible app on local Ray until Ctrl-C.")
    p_serve.add_argument("--config", "-c", default=str(local.DEFAULT_CATALOG), help="model catalog YAML")
    p_serve.add_argument("--host", default=local.DEFAULT_HOST)
    p_serve.add_argument("--port", type=int, default=local.DEFAULT_PORT)
    p_serve.add_argument(
        "--batches-root",
        default=local.DEFAULT_BATCHES_ROOT,
        help="Folder of the Batch API's files and state (/v1/files, /v1/batches); '' turns the Batch API off.",
    )

    p_query = sub.add_parser("query", help="Stream a chat completion with the openai client.")
    p_query.add_argument("prompt", nargs="?", default="Hello!")
    p_query.add_argument("--base-url", default=f"http://{local.DEFAULT_HOST}:{local.DEFAULT_PORT}/v1")
    p_query.add_argument("--model", default=None, help="Model id; default: the first one /v1/models lists.")
    p_query.add_argument("--api-key", default=None, help="Default: $KRLLM_API_KEY or the first of $KRLLM_API_KEYS.")
    p_query.add_argument("--max-tokens", type=int, default=64)
    p_query.add_argument("--temperature", type=float, default=0.0, help="Default 0: reproducible answers.")

    p_validate = sub.add_parser(
        "validate", help="Validate a catalog and print the LLMConfigs it builds (builtin: models stay unconverted)."
    )
    p_validate.add_argument("--config", "-c", required=True, help="model catalog YAML")

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "serve":
            return local.serve_forever(args.config, args.host, args.port, args.batches_root)
        if args.command == "query":
            return local.query(args.base_url, args.prompt, args.model, args.api_key, args.max_tokens, args.temperature)
        if args.command == "validate":
            from serve_apps.app import build_llm_configs
            from serve_apps.catalog import ModelCatalog

            for config in build_llm_configs(ModelCatalog.from_yaml(args.config), provision=False):
                print(config.model_dump_json(indent=2, exclude_none=True, exclude={"callback_config"}))
            return 0
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
