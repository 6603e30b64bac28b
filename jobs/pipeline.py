"""``run(spec)``: a Ray Data plan in which the driver plans and the workers move rows.

::

    read (jobs.reader, on the workers)          rows + (_file, _line): the row's identity
      -> map_batches(Parse)                     drop rows already finished (jobs.ledger);
                                                rows that can't be parsed -> errors/ parts
      -> Ray Data LLM processor                 vLLM engines (or an HTTP endpoint)
           postprocess = Finish                 workload.format_result / format_error
      -> write_datasink(PartsSink)              data/ and errors/ parts, written by the workers

The driver lists input files, builds this plan, follows counts from a small progress
actor, and writes ``summary.json`` from counts and sums the workers compute over the
parts. It never iterates over rows, results or ids, so a 100M-row job needs the driver
memory of a 100-row one.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
import signal
import time
from typing import Any

from jobs import io, ledger, parts, progress, report
from jobs.engine import batch_size_for, build_processor, defaults_for, local_ray_cpus, resolve_device
from jobs.lease import OutputLease
from jobs.spec import JobSpec
from jobs.stages import Finish, FinishErrors, Parse, RowFailed, StageContext
from jobs.startup import Warmup
from jobs.workloads import Workload, resolve_workload
from llmkit import logs, models
from llmkit.config import ConfigError

logger = logging.getLogger(__name__)

SPEC_FILE = "_job.json"

# The largest block Ray Data builds. Its default, 128 MiB, is ~400k short rows as read, and an
# engine task gives back nothing until its whole block is done: on a large input, results
# would reach the sink minutes apart and a killed job would lose them all. 8 MiB is a few
# thousand short requests; below it, reads already make smaller blocks (measured on 2 CPUs:
# 1 MiB blocks cost 12% of a 20k-row job in per-task overhead).
BLOCK_BYTES = 8 << 20


class JobFailed(RuntimeError):
    """The job ran but its outcome breaks the spec's error policy."""


class JobCancelled(RuntimeError):
    """The job was stopped (SIGTERM); what it finished is kept and reported."""


def _fingerprint(spec: JobSpec) -> str:
    """What decides the results: a resumed run must agree on it, or the output would mix two jobs."""
    decisive = spec.model_dump(
        mode="json", include={"model", "workload", "system_prompt", "prompt_template", "sampling", "input"}
    )
    return hashlib.sha256(json.dumps(decisive, sort_keys=True).encode()).hexdigest()[:16]


def _prepare_output(spec: JobSpec) -> bool:
    """Apply the resume policy; returns whether earlier parts are to be resumed from."""
    out = spec.output.path
    previous = io.read_text(out, SPEC_FILE)
    has_parts = bool(parts.part_folders(out))
    mode = spec.resume.mode
    if mode == "overwrite" and (has_parts or previous):
        logger.info("resume.mode=overwrite: clearing %s", out)
        io.clear(out)
        has_parts, previous = False, None
    if has_parts and mode == "fail":
        raise ConfigError(f"output.path {out!r} already holds results and resume.mode is 'fail'")
    fingerprint = _fingerprint(spec)
    if has_parts and previous and json.loads(previous).get("fingerprint") != fingerprint:
        raise ConfigError(
            f"output.path {out!r} holds results of a different job (model, workload, prompts, sampling or input "
            "changed); use a new output.path, or resume.mode=overwrite"
        )
    io.write_text(
        out, SPEC_FILE, json.dumps({"fingerprint": fingerprint, "spec": spec.model_dump(mode="json")}, indent=2)
    )
    if has_parts and spec.resume.rerun_failed and parts.drop_errors(out):
        # Their rows are unfinished again: the ledger below leaves them to this run.
        logger.info("resume.rerun_failed: the rows in %s run again", io.join(out, io.ERRORS_DIR))
        has_parts = bool(parts.part_folders(out))
    return has_parts


def _input_dataset(spec: JobSpec, workload: Workload, data: Any, num_cpus: float):
    from jobs.reader import from_data, read_inputs

    source = data if data is not None else workload.load_dataset()
    if source is None:
        return read_inputs(workload.input_paths(), spec.input.format, num_cpus)
    return from_data(source, spec.input.id_column, num_cpus)


def _ray_cores() -> int:
    """The CPUs a local Ray would count on this machine (its own count follows cgroup quotas)."""
    try:
        from ray._private.utils import get_num_cpus

        return int(get_num_cpus())
    except Exception:  # a Ray without it: the machine's count
        return os.cpu_count() or 1


def _init_ray(spec: JobSpec) -> None:
    """Join the cluster RAY_ADDRESS names, or start a local Ray with enough logical CPUs for the plan."""
    import ray

    address = os.environ.get("RAY_ADDRESS") or None
    cpus = None
    if address in (None, "local"):
        cores = _ray_cores()
        cpus = local_ray_cpus(spec, resolve_device(spec), cores)
    if cpus:
        try:
            ray.init(address=address, log_to_driver=True, num_cpus=cpus)
            logger.info("local Ray: %d logical CPUs on %d cores (the engines' actors and one task)", cpus, cores)
            return
        except ValueError:  # a cluster `ray start` left on this machine, which Ray joins: its size is its own
            pass
    ray.init(address=address, log_to_driver=True)


def _on_sigterm(signum, frame) -> None:  # noqa: ARG001
    raise JobCancelled("stopped by SIGTERM")


def run(spec: JobSpec, data: Any = None) -> report.Summary:
    """Run a batch job. ``data`` (rows, prompts, a DataFrame or a ``ray.data.Dataset``) replaces ``spec.input``."""
    started = time.time()
    # RAY_JOB_SUBMISSION_ID is set when KubeRay's submitter (or `ray job submit`) started us.
    logs.bind(job_id=os.environ.get("RAY_JOB_SUBMISSION_ID") or spec.name)
    workload = resolve_workload(spec)
    if workload.output_format and spec.output.format != workload.output_format:
        spec = spec.model_copy(update={"output": spec.output.model_copy(update={"format": workload.output_format})})
        workload = resolve_workload(spec)
    spec = workload.spec  # with the workload's sampling defaults folded in, for the workers
    # One run at a time on an output path: a second one (a RayJob retry while the first attempt
    # still writes, or another user) refuses here, before touching anything.
    with (
        OutputLease(spec.output.path, spec.name, ttl_s=spec.output.lease_ttl_s) as lease,
        contextlib.ExitStack() as scope,
    ):
        return _run_leased(spec, workload, data, started, lease, scope)


def _run_leased(
    spec: JobSpec, workload: Workload, data: Any, started: float, lease: OutputLease, scope: contextlib.ExitStack
) -> report.Summary:
    import ray

    warmup = Warmup()
    warmup.start_imports(spec.engine.kind)
    resuming = _prepare_output(spec)
    model_source = spec.model.source
    if spec.engine.kind == "vllm":
        model_source = models.resolve(spec.model.source)
        # Ray is not up yet: this is what the spec and this machine say, which is enough here.
        if resolve_device(spec) == "gpu":
            warmup.start_model_inspection(model_source)
    out = spec.output.path
    run_id = parts.new_run_id()
    previous_handler = None
    cancelled = False
    try:
        if not ray.is_initialized():
            _init_ray(spec)
        # Our own progress line (rows, tokens) replaces Ray Data's per-operator one every few seconds.
        data_context = scope.enter_context(_scoped_data_context())
        data_context.enable_progress_bars = False
        data_context.target_max_block_size = min(data_context.target_max_block_size, BLOCK_BYTES)
        device = resolve_device(spec)
        stage_cpus = defaults_for(device).stage_num_cpus
        ledger.clear_old(out, keep=run_id)
        ledger_folder, before = None, {"rows_ok": 0, "rows_failed": 0}
        if resuming:
            done = ledger.build(out, run_id)
            before = parts.totals(out)
            ledger_folder = ledger.ledger_dir(out, run_id)
            logger.info("resuming: %d rows already finished in %s", done, out)
        duplicates = None
        if workload.checks_unique_keys():
            keys = _input_dataset(spec, workload, data, stage_cpus)
            duplicates = ledger.build_duplicates(keys, spec.model_dump_json(), out, run_id, stage_cpus)
        progress_name, progress_handle = progress.start(spec.name, run_id)
        ctx = StageContext(
            spec_json=spec.model_dump_json(),
            root=out,
            run=run_id,
            ledger=ledger_folder,
            duplicates=duplicates,
            progress=progress_name,
            model=spec.model_name(),
        )
        logger.info("engine %s on %s, model %s", spec.engine.kind, device, model_source)
        warmup.wait()
        ds = _plan(spec, workload, data, ctx, model_source, device)
        sink = parts.sink(out, spec.output.format, run_id, spec.output.rows_per_file, progress_name)
        if threading_main():
            previous_handler = signal.signal(signal.SIGTERM, _on_sigterm)
        with progress.Monitor(progress_handle, spec.name, out, base=before) as monitor:
            execution_started = time.time()
            try:
                # The light stages' CPUs: with Ray's default of one CPU, the write tasks don't fit
                # beside a CPU engine and wait for its end, and they don't fuse with the stage before.
                ds.write_datasink(sink, ray_remote_args={"num_cpus": stage_cpus})
            except (JobCancelled, KeyboardInterrupt):
                cancelled = True
                logger.warning("job %s cancelled: keeping the %d rows finished so far", spec.name, monitor.done())
            except Exception as e:
                failed = _row_failure(e)
                if failed is None:
                    raise
                raise JobFailed(f"{failed} (errors.on_row_error is 'fail')") from None
    finally:
        warmup.close()
        if previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)

    lease.ensure_held()  # a run that lost its lease (stalled past its TTL) must not report success
    this_run = {**monitor.last, "execution_started_at": execution_started}
    summary = report.finalize(spec, workload, started, this_run, before, device, cancelled=cancelled)
    if cancelled:
        raise JobCancelled(f"job {spec.name} cancelled; {summary.rows_ok} rows ok so far in {out}")
    if summary.failure:
        raise JobFailed(summary.failure)
    return summary


@contextlib.contextmanager
def _scoped_data_context():
    """Ray Data's context is the process's: a job run through the Python API sets its fields for its
    own datasets (which copy the context when they are made) and leaves the caller's as it found them."""
    import ray

    ctx = ray.data.DataContext.get_current()
    saved = (ctx.enable_progress_bars, ctx.target_max_block_size, copy.deepcopy(ctx.execution_options))
    try:
        yield ctx
    finally:
        ctx.enable_progress_bars, ctx.target_max_block_size, ctx.execution_options = saved


def _row_failure(error: BaseException) -> str | None:
    """The message of the RowFailed somewhere in a Ray Data error's chain, if any."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, RowFailed):
            return str(error).strip().splitlines()[-1]
        error = error.__cause__ or error.__context__
    return None


def threading_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _plan(spec: JobSpec, workload: Workload, data: Any, ctx: StageContext, model_source: str, device: str):
    """read -> parse -> processor (postprocess: finish); the write is the caller's."""
    import ray

    stage_cpus = defaults_for(device).stage_num_cpus
    batch_size = batch_size_for(spec, device)
    ds = _input_dataset(spec, workload, data, stage_cpus)
    if spec.input.limit is not None:
        # The first N rows in file order, the same N on every run.
        ray.data.DataContext.get_current().execution_options.preserve_order = True
        ds = ds.limit(spec.input.limit)
    # Parse's output blocks are engine batches: each Ray Data task of the engine stage is then one
    # whole batch, and tasks are small enough to spread evenly over the engines.
    ds = ds.map_batches(
        Parse(ctx), batch_format="pyarrow", batch_size=batch_size, num_cpus=stage_cpus, zero_copy_batch=True
    )
    processor = build_processor(spec, model_source, device, finish=Finish(ctx))
    if spec.engine.kind == "http":
        return processor(ds)  # the HTTP stage shapes every row itself, failures included
    # batch_size=None: each block as it comes. Ray Data's default (1024 rows) would hold results
    # back until that many had gathered, so a killed job would lose them.
    return processor(ds).map_batches(
        FinishErrors(ctx), batch_format="pyarrow", batch_size=None, num_cpus=stage_cpus, zero_copy_batch=True
    )
