"""The ``georecall`` command line: a thin layer over the library.

Bad input never shows a traceback: it exits with status 2 and one line on stderr.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from georecall import __version__
from georecall.config import MAX_HOPS, ModelConfig, RunConfig, TaskConfig, TrainConfig, apply_overrides
from georecall.experiments import EXPERIMENTS  # a dict of names only: imports nothing heavy

EXIT_BAD_INPUT = 2


class BadInput(click.ClickException):
    """A user error: one line on stderr, exit status 2."""

    exit_code = EXIT_BAD_INPUT

    def show(self, file: Any = None) -> None:
        _say_error(self.format_message())


def _say_error(message: str) -> int:
    """Print ``message`` as the one ``georecall: error:`` line on stderr, whatever line breaks it quotes (a key or
    a value from the user's file may hold some); returns :data:`EXIT_BAD_INPUT`."""
    click.echo(f"georecall: error: {' '.join(message.splitlines())}", err=True)
    return EXIT_BAD_INPUT


def _parse_seeds(value: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(s) for s in value.split(",") if s.strip())
    except ValueError:
        raise BadInput(f"--seeds expects comma-separated integers such as 0,1,2, got {value!r}") from None
    if not seeds:
        raise BadInput(f"--seeds expects comma-separated integers such as 0,1,2, got {value!r}")
    return seeds


def _progress_bar(total: int, enabled: bool):  # -> (callback, close)
    """A tqdm bar on stderr that appears only once a run has taken more than two seconds."""
    if not enabled or total == 0:
        return None, lambda: None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc="train", unit="step", file=sys.stderr, delay=2.0, dynamic_ncols=True)

    def update(p) -> None:
        bar.update(p.step - bar.n)
        if p.accuracy is not None:
            bar.set_postfix(active=p.active, acc=f"{min(p.accuracy):.3f}")

    return update, bar.close


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="georecall")
@click.option("-v", "--verbose", is_flag=True, help="Log progress details to stderr.")
def cli(verbose: bool) -> None:
    """georecall: geometric factual recall in transformers, runnable and measurable."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="georecall: %(levelname)s: %(message)s")


_T, _M, _R = TaskConfig(), ModelConfig(), TrainConfig()

#: Default torch CPU threads. One: the models here are tiny, so a step is many small kernels, and on our
#: 2-core machines two threads ran small trainings 13x slower than one when quiet and 4x slower beside one
#: busy process (benchmarks/threads.py, benchmarks/RESULTS.md). ``--threads`` or GEORECALL_THREADS changes it.
DEFAULT_THREADS = 1


def _check_out(out: str | None) -> None:
    """Refuse an empty ``--out``: it would write into the current folder."""
    if out is not None and not out.strip():
        raise BadInput("--out must name a folder, got an empty string")


def _threads_option(f: Any) -> Any:
    return click.option("--threads", type=int, default=None, envvar="GEORECALL_THREADS", show_envvar=True,
                        help=f"torch CPU threads (intra-op). [default: {DEFAULT_THREADS}]")(f)


def _check_writable(folder: str | os.PathLike[str], what: str) -> None:
    """Refuse, before any work, a destination folder that cannot be created or written (nothing is lost later).

    Creates the folder (and its parents) and writes and removes a probe file in it.
    """
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".georecall-write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise BadInput(f"{what} {str(path)!r} cannot be written: {err.strerror or err}") from None


def _workers_option(f: Any) -> Any:
    return click.option("--workers", type=int, default=None, envvar="GEORECALL_WORKERS", show_envvar=True,
                        help="Local processes training ensembles side by side. [default: one per CPU core "
                        "(over --threads) on the CPU, at most 8; 1 on a GPU]")(f)


def _workers(workers: int | None, device: str | None) -> int:
    """``--workers``, or the default for the device (:func:`~georecall.training.sweep.auto_workers`)."""
    from georecall.training.sweep import auto_workers

    if workers is not None and not 1 <= workers <= MAX_THREADS:
        raise BadInput(f"--workers must be between 1 and {MAX_THREADS}, got {workers}")
    return auto_workers(device) if workers is None else workers


def _executor_options(f: Any) -> Any:
    f = click.option("--ray-address", default=None, envvar="RAY_ADDRESS", show_envvar=True,
                     help="With --executor ray: an existing Ray cluster (host:port of its head, ray://host:10001, "
                     "or auto); without it a local Ray instance with --workers CPUs is started for the run.")(f)
    return click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
                        envvar="GEORECALL_EXECUTOR", show_envvar=True,
                        help="Where ensembles train: local (this process, or --workers local processes) or "
                        'ray (a Ray cluster\'s tasks; pip install "georecall[ray]").')(f)


def _executor(executor: str, ray_address: str | None, workers: int | None, device: str | None) -> Any:
    """``--executor``/``--ray-address`` as an executor for ``run_sweep`` (None: local, by ``--workers``). Validated
    at once: a missing extra or an address nothing answers at is one line, before any work."""
    ctx = click.get_current_context()
    if executor == "local":
        if ray_address and ctx.get_parameter_source("ray_address") == click.core.ParameterSource.COMMANDLINE:
            raise BadInput("--ray-address applies only with --executor ray")
        return None
    from georecall.training.executors import RayExecutor

    gpus = 1 if device is not None and device.startswith("cuda") else 0  # one GPU per ensemble on --device cuda
    try:
        ex = RayExecutor(address=ray_address or None, num_cpus=None if ray_address else workers, gpus_per_task=gpus)
    except (ImportError, ValueError, ConnectionError) as err:
        raise BadInput(str(err)) from None
    ctx.call_on_close(ex.close)
    return ex


#: The most torch threads (and local workers) taken: beyond any machine's cores, and torch's int range.
MAX_THREADS = 4096


def _set_threads(threads: int | None) -> None:
    """Apply ``--threads`` (default :data:`DEFAULT_THREADS`) before any torch work."""
    n = DEFAULT_THREADS if threads is None else threads
    if not 1 <= n <= MAX_THREADS:
        raise BadInput(f"--threads must be between 1 and {MAX_THREADS}, got {n}")
    import torch

    torch.set_num_threads(n)


@cli.command()
@click.option("--n-subjects", type=int, help=f"N, subjects (and attributes). [default: {_T.n_subjects}]")
@click.option("--n-relations", type=int, help=f"K, relations, each a bijection. [default: {_T.n_relations}]")
@click.option("--hops", type=int, help=f"k, relations per chain; r_1 applied first. [default: {_T.n_hops}]")
@click.option("--cot", type=click.Choice(["none", "interleaved", "question-first"]), is_flag=False,
              flag_value="interleaved", help="Chain-of-thought format; a bare --cot means interleaved. "
              "[default: none]")
@click.option("--d-model", type=int, help=f"Residual width d. [default: {_M.d_model}]")
@click.option("--d-mlp", type=int, help=f"MLP hidden width. [default: {_M.d_mlp}]")
@click.option("--n-layers", type=int, help=f"Transformer blocks. [default: {_M.n_layers}]")
@click.option("--n-heads", type=int, help=f"Attention heads per block. [default: {_M.n_heads}]")
@click.option("--layernorm/--no-layernorm", default=None, help="Pre-LayerNorm on or off. [default: on]")
@click.option("--frozen-embeddings", is_flag=True, default=None,
              help="Keep token and position embeddings at their random init.")
@click.option("--steps", type=int, help=f"Step budget. [default: {_R.steps}]")
@click.option("--lr", type=float, help=f"Peak learning rate (AdamW). [default: {_R.lr}]")
@click.option("--seeds", default="0", show_default=True,
              help="Comma-separated seeds; one ensemble member per seed, trained together.")
@click.option("--device", help="auto, cpu, cuda or cuda:N. [default: auto]")
@click.option("--out", type=click.Path(file_okay=False), help="Write the run directory here "
              "(default: $GEORECALL_OUT/train/<config hash> if GEORECALL_OUT is set, else nothing is written).")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.FIELD=VALUE",
              help="Any other config field, e.g. --set train.batch_size=256 --set model.d_mlp2=64. Repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_threads_option
def train(n_subjects: int | None, n_relations: int | None, hops: int | None, cot: str | None,
          d_model: int | None, d_mlp: int | None, n_layers: int | None, n_heads: int | None,
          layernorm: bool | None, frozen_embeddings: bool | None, steps: int | None, lr: float | None,
          seeds: str, device: str | None, out: str | None, overrides: tuple[str, ...], as_json: bool,
          quiet: bool, threads: int | None) -> None:
    """Train an ensemble (one model per seed) on a world of facts and report its accuracy.

    \b
    Example:
      georecall train --n-subjects 512 --n-relations 4 --d-model 32 --seeds 0,1,2,3 --json
    """
    task = {"n_subjects": n_subjects, "n_relations": n_relations, "n_hops": hops,
            "cot": None if cot is None else cot.replace("-", "_")}
    model = {"d_model": d_model, "d_mlp": d_mlp, "n_layers": n_layers, "n_heads": n_heads,
             "layernorm": layernorm, "frozen_embeddings": frozen_embeddings}
    tr = {"steps": steps, "lr": lr, "device": device}
    _set_threads(threads)
    _check_out(out)
    try:
        config = RunConfig(
            task=TaskConfig(**{k: v for k, v in task.items() if v is not None}),
            model=ModelConfig(**{k: v for k, v in model.items() if v is not None}),
            train=TrainConfig(**{k: v for k, v in tr.items() if v is not None}),
            seeds=_parse_seeds(seeds),
        )
        config = apply_overrides(config, overrides)
        from georecall.tasks import resolve_query_count
        from georecall.training import resolve_device

        resolve_query_count(config.task)  # refuse an oversized query set before any work
        resolve_device(config.train.device)
        from georecall.machine import check_fits
        from georecall.training.memory import train_bytes

        check_fits(train_bytes(config), "this training")  # refuse a huge size with its estimate, before allocating
    except ValueError as err:
        raise BadInput(str(err)) from None
    out_dir = out
    if out_dir is None and os.environ.get("GEORECALL_OUT"):
        out_dir = os.path.join(os.environ["GEORECALL_OUT"], "train", config.config_hash()[:12])
    if out_dir is not None:  # checked before training, so a bad destination never costs a trained run
        if Path(out_dir).is_dir() and any(Path(out_dir).iterdir()):
            raise BadInput(f"--out {out_dir!r} already holds files (a run directory?); choose an empty or new folder")
        _check_writable(out_dir, "--out")

    from georecall.results import save_run
    from georecall.training import train as train_ensemble

    callback, close = _progress_bar(config.train.steps, enabled=not quiet)
    try:
        run = train_ensemble(config, progress=callback)
    except ValueError as err:
        raise BadInput(str(err)) from None
    finally:
        close()
    if out_dir is not None:
        save_run(run, out_dir)
    res = run.result
    if as_json:
        payload = {**dataclasses.asdict(res), "config": config.to_dict(), "config_hash": config.config_hash(),
                   "out": out_dir}
        click.echo(json.dumps(payload))
        return
    t = config.task
    click.echo(f"N={t.n_subjects} K={t.n_relations} k={t.n_hops} cot={t.cot}  d_model={config.model.d_model} "
               f"d_mlp={config.model.d_mlp}  {res.n_queries} queries  {res.n_params['total']:,} params/model  "
               f"{res.wall_time_s:.1f}s on {res.device}")
    for seed, acc, steps_, why in zip(res.seeds, res.accuracy, res.steps, res.stop_reason, strict=True):
        click.echo(f"  seed {seed}: accuracy {acc:.4f}  after {steps_} steps ({why})")
    if out_dir is not None:
        click.echo(f"run written to {out_dir}")


def _sweep_progress(enabled: bool, desc: str):  # -> (callback, close)
    """A runs-done / total bar with an ETA on stderr."""
    if not enabled:
        return None, lambda: None
    from tqdm.auto import tqdm

    bar = tqdm(desc=desc, unit="run", file=sys.stderr, dynamic_ncols=True)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    return update, bar.close


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Sweep folder: results.sqlite and one run directory per run "
              "(default: $GEORECALL_OUT/sweeps, else ./runs/sweeps).")
@click.option("--device", help="Override train.device for every run (not part of a run's identity).")
@click.option("--max-members", type=int, default=64, show_default=True,
              help="Largest ensemble trained at once (on the CPU also at most what keeps ~16 MB of activations).")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="Also export this sweep's rows as CSV.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_threads_option
@_workers_option
@_executor_options
def sweep(file: str, out: str | None, device: str | None, max_members: int, csv_path: str | None,
          as_json: bool, quiet: bool, threads: int | None, workers: int | None, executor: str,
          ray_address: str | None) -> None:
    """Run a sweep file: a base config and a grid, trained as ensembles; re-running resumes.

    \b
    A sweep file (YAML or JSON):
      name: width_vs_n
      base: {task: {n_relations: 4}, train: {steps: 2000}}
      grid: {task.n_subjects: [64, 128], model.d_model: [8, 16], seeds: [0, 1]}
    """
    from georecall.results.store import ResultStore
    from georecall.training import resolve_device
    from georecall.training.sweep import STORE_NAME, load_sweep_file, run_sweep

    _check_out(out)
    out_dir = out or os.path.join(os.environ.get("GEORECALL_OUT", "runs"), "sweeps")
    _set_threads(threads)
    try:
        name, runs = load_sweep_file(file)
        if device is not None:
            resolve_device(device)
        if max_members < 1:
            raise ValueError(f"--max-members must be >= 1, got {max_members}")
        n_workers = _workers(workers, device)
    except (ValueError, OSError) as err:
        raise BadInput(str(err)) from None
    except Exception as err:  # malformed YAML or JSON
        raise BadInput(f"{file}: {type(err).__name__}: {err}") from None
    _check_writable(out_dir, "--out")
    if csv_path:
        if not csv_path.strip():
            raise BadInput("--csv must name a file, got an empty string")
        _check_writable(Path(csv_path).resolve().parent, "--csv's folder")
    ex = _executor(executor, ray_address, workers, device)
    callback, close = _sweep_progress(not quiet, name)
    try:
        report = run_sweep(runs, out_dir, experiment=name, max_members=max_members, device=device,
                           progress=callback, workers=n_workers, executor=ex)
    finally:
        close()
    if csv_path:  # every run of this sweep, by hash, whichever sweep name trained it
        with ResultStore(os.path.join(out_dir, STORE_NAME)) as store:
            store.export_csv(csv_path, hashes={r.config_hash() for r in runs})
    payload = {"name": name, **dataclasses.asdict(report), "store": os.path.join(out_dir, STORE_NAME)}
    if report.failed and report.failed == report.total:
        raise BadInput(f"{name}: all {report.total} runs failed (their errors are in {payload['store']} and in each "
                       "run's error.txt); nothing was trained")
    if as_json:
        click.echo(json.dumps(payload))
    else:
        click.echo(f"{name}: {report.total} runs, {report.skipped} already done, {report.trained} trained, "
                   f"{report.failed} failed; results in {payload['store']}")


_EXPERIMENT_IDS = list(EXPERIMENTS)


def _lm_errors() -> tuple[type[BaseException], ...]:
    """The error a language model that cannot be loaded raises (none when the lm module is absent)."""
    try:
        from georecall.lm.load import LMLoadError
    except ImportError:
        return ()
    return (LMLoadError,)


def _default_out() -> str:
    return os.environ.get("GEORECALL_OUT", "runs")


def _out_dir(out: str | None) -> str:
    """``--out`` or the default (:func:`_check_out` first). Commands that write call :func:`_check_writable`
    on it once their other arguments are checked (so a refused command leaves nothing behind)."""
    _check_out(out)
    return out or _default_out()


@cli.command("run")
@click.argument("experiment", type=click.Choice(_EXPERIMENT_IDS))
@click.option("--scale", type=click.Choice(["smoke", "quick", "paper"]), default="quick", show_default=True,
              help="smoke: seconds on a CPU; quick: minutes on 2 CPU cores; paper: the paper's setting (GPU).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Output folder (default: $GEORECALL_OUT, else ./runs); re-running resumes.")
@click.option("--device", help="Override train.device for every run: auto, cpu, cuda or cuda:N.")
@click.option("--max-members", type=int, default=64, show_default=True,
              help="Largest ensemble trained at once (on the CPU also at most what keeps ~16 MB of activations).")
@click.option("--set", "overrides", multiple=True, metavar="PATH.FIELD=VALUE",
              help="Override any field of the experiment's config, checked by name and type "
              "(--set recipe.lr=1e-2, --set seeds=[0,1]); repeatable.")
@click.option("--model", "model_name", metavar="NAME_OR_PATH", default=None,
              help="The language model of an experiment that has one (real_lm): a Hugging Face name (gpt2), a "
              "folder, a GGUF file, smollm2-packaged or tiny; the same as --set model=NAME_OR_PATH.")
@click.option("--json", "as_json", is_flag=True, help="Print the result envelope as one JSON object on stdout.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_threads_option
@_workers_option
@_executor_options
def run_cmd(experiment: str, scale: str, out: str | None, device: str | None, max_members: int,
            overrides: tuple[str, ...], model_name: str | None, as_json: bool, quiet: bool,
            threads: int | None, workers: int | None, executor: str, ray_address: str | None) -> None:
    """Run an experiment at a scale: train what is missing, analyse, save result.json, CSVs and figures.

    result.json is an envelope: provenance, the paper's own words, meta (version, git, torch, device,
    seeds, wall time), the hashes of the runs behind it, the claims it decides, and the payload.
    """
    from georecall.experiments import extras_hint, get_experiment
    from georecall.experiments.base import apply_config_overrides, run_experiment
    from georecall.training import resolve_device

    out_dir = _out_dir(out)
    _set_threads(threads)
    try:
        if device is not None:
            resolve_device(device)
        if max_members < 1:
            raise ValueError(f"--max-members must be >= 1, got {max_members}")
        module = get_experiment(experiment)
        if model_name is not None:
            if "model" not in {f.name for f in dataclasses.fields(module.config(scale))}:
                raise ValueError(f"--model applies only to an experiment whose config has a model field (real_lm); "
                                 f"{experiment} has none")
            overrides = (*overrides, f"model={model_name}")
        apply_config_overrides(module.config(scale), overrides)  # refuse a bad --set before any work
        if extras_hint(experiment):
            raise ValueError(extras_hint(experiment))
        n_workers = _workers(workers, device)
    except ValueError as err:
        raise BadInput(str(err)) from None
    _check_writable(out_dir, "--out")
    ex = _executor(executor, ray_address, workers, device)
    callback, close = _sweep_progress(not quiet, f"{experiment} ({scale})")
    try:
        done = run_experiment(module, scale, out_dir, device=device, progress=callback, max_members=max_members,
                              overrides=overrides, workers=n_workers, executor=ex)
    except _lm_errors() as err:  # a model that cannot be loaded: one line, no traceback
        raise BadInput(str(err)) from None
    finally:
        close()
    folder, figures = done.folder, done.figures
    if as_json:
        click.echo(json.dumps({**done.envelope, "result_dir": str(folder), "figures": [str(f) for f in figures]}))
        return
    summary = getattr(module, "summarize", None)
    if summary is not None:
        click.echo(summary(done.result))
    for c in done.envelope["claims"]:
        click.echo(f"{c['id']}: {c['verdict']} — {c['reason']}")
    click.echo(f"result: {folder / 'result.json'}")
    for f in figures:
        click.echo(f"figure: {f}")


@cli.command("reproduce")
@click.option("--scale", type=click.Choice(["smoke", "quick", "paper"]), default="quick", show_default=True,
              help="smoke: about a minute on 2 CPU cores; quick: ~20 min there (budget 30); paper: the paper's grids "
              "(GPU).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Output folder for runs, results and the report (default: $GEORECALL_OUT, else ./runs); "
              "re-running resumes.")
@click.option("--only", default=None, metavar="ID,...",
              help=f"Run only these experiments (comma-separated: {', '.join(EXPERIMENTS)}); the others' claims "
              "are reported not tested.")
@click.option("--device", help="Override train.device for every run: auto, cpu, cuda or cuda:N.")
@click.option("--max-members", type=int, default=64, show_default=True,
              help="Largest ensemble trained at once (on the CPU also at most what keeps ~16 MB of activations).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: report paths, verdicts, timings.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_threads_option
@_workers_option
@_executor_options
def reproduce_cmd(scale: str, out: str | None, only: str | None, device: str | None, max_members: int,
                  as_json: bool, quiet: bool, threads: int | None, workers: int | None, executor: str,
                  ray_address: str | None) -> None:
    """Run every experiment at a scale and write report.md and report.html: each claim's verdict by its criterion.

    \b
    Resumable: finished runs are kept in <out>/results.sqlite and never retrained, so a killed
    reproduction picks up where it stopped. The report is rebuilt from the saved result.json files.
    Example:
      georecall reproduce --scale quick --out report/
    """
    from georecall.experiments.reproduce import reproduce, select
    from georecall.training import resolve_device

    out_dir = _out_dir(out)
    _set_threads(threads)
    ids = None if only is None else [s.strip() for s in only.split(",") if s.strip()]
    try:
        if only is not None and not ids:
            raise ValueError(f"--only expects comma-separated experiment ids, got {only!r}")
        select(ids)
        if device is not None:
            resolve_device(device)
        if max_members < 1:
            raise ValueError(f"--max-members must be >= 1, got {max_members}")
        n_workers = _workers(workers, device)
    except ValueError as err:
        raise BadInput(str(err)) from None
    _check_writable(out_dir, "--out")
    ex = _executor(executor, ray_address, workers, device)
    bar = None
    if not quiet:
        from tqdm.auto import tqdm

        # On a terminal the bar redraws in place; into a log file it would write a line per run, so there it
        # updates at most twice a minute.
        bar = tqdm(desc=f"reproduce ({scale})", unit="run", file=sys.stderr, dynamic_ncols=True,
                   mininterval=0.5 if sys.stderr.isatty() else 30.0)

    def progress(done: int, total: int, label: str) -> None:
        bar.total = total
        bar.set_postfix_str(label)
        bar.update(done - bar.n)

    try:
        rep = reproduce(scale, out_dir, only=ids, device=device, max_members=max_members,
                        progress=progress if bar is not None else None, workers=n_workers, executor=ex)
    except (ValueError, *_lm_errors()) as err:  # LMLoadError: a model that cannot be loaded
        raise BadInput(str(err)) from None
    finally:
        if bar is not None:
            bar.close()
    if as_json:
        click.echo(json.dumps({"report_html": str(rep.html), "report_md": str(rep.markdown),
                               "verdicts": rep.verdicts, "timings_s": rep.timings, "skipped": rep.skipped}))
        return
    for exp_id, why in rep.skipped.items():
        click.echo(f"skipped {exp_id}: {why}")
    for claim_id, verdict in rep.verdicts.items():
        click.echo(f"{claim_id:>4}  {verdict}")
    click.echo("time: " + ", ".join(f"{k} {v / 60:.1f} min" for k, v in rep.timings.items()))
    click.echo(f"report: {rep.html}")
    click.echo(f"report: {rep.markdown}")


@cli.command("plot")
@click.argument("experiment", type=click.Choice(_EXPERIMENT_IDS))
@click.option("--scale", type=click.Choice(["smoke", "quick", "paper"]), default="quick", show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="The folder the experiment ran in (default: $GEORECALL_OUT, else ./runs).")
def plot_cmd(experiment: str, scale: str, out: str | None) -> None:
    """Redraw an experiment's figures from its saved result.json and CSVs (no training, no network)."""
    from georecall.experiments import get_experiment
    from georecall.experiments.base import result_dir

    folder = result_dir(_out_dir(out), experiment, scale)
    try:
        figures = get_experiment(experiment).plot(folder)
    except (FileNotFoundError, ValueError) as err:
        raise BadInput(str(err)) from None
    for f in figures:
        click.echo(f"figure: {f}")


_CONSTRUCTION_NAMES = ["selector", "selector-mlp3", "attention-only", "disjoint", "disjoint-mlp", "kv-memory",
                       "precompute", "cot", "cot-question-first", "meet-in-middle", "meet-in-middle-tied",
                       "readout-only"]


@cli.command()
@click.argument("name", type=click.Choice(_CONSTRUCTION_NAMES))
@click.option("--n-subjects", type=int, required=True, help="N, subjects.")
@click.option("--n-relations", type=int, required=True, help="K, relations.")
@click.option("--hops", type=click.IntRange(max=MAX_HOPS),
              help="k; defaults to the construction's own (1, or 2 for meet-in-middle).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the world's bijections.")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32", show_default=True)
@click.option("--n-queries", type=int, help="Score a seeded sample of this many queries instead of all of them.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N (TF32 and autocast refused).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def construct(name: str, n_subjects: int, n_relations: int, hops: int | None, seed: int, dtype: str,
              n_queries: int | None, device: str, as_json: bool) -> None:
    """Build a construction by formula (never trained) and score it on every query.

    \b
    Example:
      georecall construct selector --n-subjects 4096 --n-relations 8 --json
    """
    import time

    import torch

    from georecall.constructions import build_construction, score_construction
    from georecall.constructions.registry import check_construction_fits
    from georecall.training import resolve_device

    try:
        resolve_device(device)
        check_construction_fits(name, n_subjects, n_relations, hops, itemsize=getattr(torch, dtype).itemsize,
                                n_queries=n_queries)
        t0 = time.perf_counter()
        c = build_construction(name, n_subjects, n_relations, hops, seed=seed, dtype=getattr(torch, dtype))
        score = score_construction(c, n_queries=n_queries, device=device)
    except (ValueError, RuntimeError) as err:
        raise BadInput(str(err)) from None
    except OverflowError as err:  # a size whose closed-form counts leave floating point (or an index)
        raise BadInput(f"construction {name} at N={n_subjects}, K={n_relations}, k={hops}: the sizes are too large "
                       f"to count ({err}); choose smaller ones") from None
    wall = time.perf_counter() - t0
    payload = {"name": c.name, "theorem": c.theorem, "n_subjects": n_subjects, "n_relations": n_relations,
               "hops": c.task.n_hops, "accuracy": score.accuracy, "n_queries": score.n_queries,
               "n_query_space": score.n_query_space, "min_margin": score.min_margin, "n_wrong": score.n_wrong,
               "d_model": c.dims["d_model"], "mlp_widths": list(c.dims.get("mlp_widths", [])),
               "n_layers": c.dims.get("n_layers"), "heads": c.dims.get("heads"), "params": c.params,
               "formula": c.formula, "dtype": dtype, "wall_time_s": wall}
    if as_json:
        click.echo(json.dumps(payload))
        return
    click.echo(f"{c.name} ({c.theorem}) on N={n_subjects} K={n_relations} k={c.task.n_hops}, {dtype}")
    click.echo(f"  accuracy {score.accuracy:.6f} on {score.n_queries:,} of {score.n_query_space:,} queries, "
               f"min margin {score.min_margin:.4f}, {wall:.2f}s")
    click.echo(f"  d_model {payload['d_model']}, MLP widths {payload['mlp_widths'] or '-'}, "
               f"layers {payload['n_layers']}, heads (d_k, d_v) {payload['heads']}")
    click.echo("  params  " + "  ".join(f"{g} {c.params[g]:,}" for g in c.params))
    click.echo("  formula " + "  ".join(f"{g} {c.formula[g]:,}" for g in c.formula))


@cli.command()
@click.option("--n-subjects", type=int, required=True, help="N, subjects.")
@click.option("--n-relations", type=int, required=True, help="K, relations.")
@click.option("--hops", type=click.IntRange(max=MAX_HOPS), default=1, show_default=True, help="k, hops (no CoT).")
@click.option("--embedding-bits", type=float, required=True, help="B_e, bits per subject embedding.")
@click.option("--readout", type=click.Choice(["fixed", "learned", "tied"]), default="fixed", show_default=True,
              help="The model class: readout fixed before the facts, learned (counted in P), or tied to E.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def bound(n_subjects: int, n_relations: int, hops: int, embedding_bits: float, readout: str, as_json: bool) -> None:
    """Theorem 4.2's lower bound on the non-embedding bits P, beside the constructions' costs.

    \b
    Example:
      georecall bound --n-subjects 65536 --n-relations 4 --hops 2 --embedding-bits 0
    """
    from georecall.theory import CONSTRUCTIONS as COSTED
    from georecall.theory import check_against_bound, information_bits, required_bits

    try:
        b = required_bits(n_subjects, n_relations, hops, embedding_bits, readout=readout)
    except ValueError as err:
        raise BadInput(str(err)) from None
    except OverflowError as err:  # N or K beyond floating point
        raise BadInput(f"N={n_subjects}, K={n_relations}, k={hops}: the bound's counts are too large for floating "
                       f"point ({err}); choose smaller sizes") from None
    rows = []
    for name in COSTED:
        try:
            chk = check_against_bound(name, n_subjects, n_relations, hops)
        except (ValueError, OverflowError):
            continue  # the construction does not answer this (N, K, k), or its size leaves floating point
        rows.append({"name": name, "readout": chk.readout, "P_bits": chk.P_have, "embedding_bits": chk.embedding_bits,
                     "P_needed": chk.P_needed, "verdict": chk.verdict})
    payload = {"n_subjects": n_subjects, "n_relations": n_relations, "hops": hops, "embedding_bits": embedding_bits,
               "required_bits": b.required_bits, "global": b.global_bits, "local": b.local_bits,
               "best_M": b.best_M, "gamma_global": b.gamma_global, "gamma_local": b.gamma_local,
               "regime": b.regime, "readout": b.readout,
               "information_bits": information_bits(n_subjects, n_relations), "constructions": rows}
    if as_json:
        click.echo(json.dumps(payload))
        return

    def fmt(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.4g}"

    click.echo(f"Theorem 4.2, N={n_subjects} K={n_relations} k={hops}, B_e={embedding_bits:g} bits, "
               f"readout {b.readout}")
    click.echo(f"  required P  {fmt(b.required_bits)} bits   (regime {b.regime})")
    click.echo(f"  global G    {fmt(b.global_bits)}   gamma_G {fmt(b.gamma_global)} bits/subject")
    click.echo(f"  local L     {fmt(b.local_bits)}   gamma_L {fmt(b.gamma_local)} bits/subject   (best M {b.best_M})")
    click.echo(f"  information K*log2 N! = {fmt(payload['information_bits'])} bits")
    click.echo("  constructions at their own B_e (content convention, docs/theory.md §6.6):")
    for r in rows:
        click.echo(f"    {r['name']:<20} readout {r['readout']:<7} P {fmt(r['P_bits']):>9}  "
                   f"B_e {fmt(r['embedding_bits']):>7}  needs {fmt(r['P_needed']):>9}  {r['verdict']}")


@cli.command("theory-figures")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Folder for the PNG files.")
@click.option("--n-subjects", type=int, default=65536, show_default=True, help="N for the cost-vs-hops figure.")
@click.option("--n-relations", type=int, default=4, show_default=True, help="K for both figures.")
@click.option("--max-hops", type=click.IntRange(max=MAX_HOPS), default=5, show_default=True,
              help="Largest k in the cost-vs-hops figure.")
def theory_figures(out: str, n_subjects: int, n_relations: int, max_hops: int) -> None:
    """Draw the theory's two figures: parameter cost against k, and selector d_model against N."""
    from georecall.theory.figures import plot_cost_vs_hops, plot_dmodel_vs_n

    if max_hops < 1:
        raise BadInput(f"--max-hops must be >= 1, got {max_hops}")
    _check_out(out)
    _check_writable(out, "--out")
    folder = Path(out)
    cost = folder / f"cost_vs_hops_N{n_subjects}_K{n_relations}.png"
    width = folder / f"dmodel_vs_n_K{n_relations}.png"
    try:
        plot_cost_vs_hops(n_subjects, n_relations, list(range(1, max_hops + 1)), cost)
        plot_dmodel_vs_n(n_relations, [2**i for i in range(1, 21)], width)
    except ValueError as err:
        raise BadInput(str(err)) from None
    except OverflowError as err:  # K^k past floating point
        raise BadInput(f"N={n_subjects}, K={n_relations}, k up to {max_hops}: the costs are too large for floating "
                       f"point ({err}); choose a smaller --max-hops or --n-relations") from None
    click.echo(f"wrote {cost}\nwrote {width}")


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the CLI and turns every user error into one line and exit status 2."""
    if argv is not None and any("\0" in a for a in argv if isinstance(a, str)):  # no OS path or value holds one
        return _say_error("an argument holds a NUL byte")
    try:
        cli.main(args=argv, prog_name="georecall", standalone_mode=False)
    except click.exceptions.Exit as ex:
        return ex.exit_code
    except click.exceptions.Abort:
        click.echo("georecall: aborted", err=True)
        return 130
    except click.ClickException as ex:  # usage errors and BadInput
        return _say_error(ex.format_message())
    except Exception as ex:  # a full disk (or quota, or a folder turned read-only) mid-run: say so in one line
        from georecall.training.executors import is_disk_full

        if not is_disk_full(ex):
            raise
        where = getattr(ex, "filename", None)
        detail = ex.strerror if isinstance(ex, OSError) and ex.strerror else str(ex)
        return _say_error(f"{detail}{f' writing {where}' if where else ''}; every run finished before is kept (run "
                          "the same command again to resume once there is room)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
