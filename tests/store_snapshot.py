"""A sweep's store as the crash and executor tests compare it: per run hash, its status, its result without the
wall time (the one field that differs between two trainings of the same run), and its weights."""

from safetensors.torch import load_file

from georecall.results.store import ResultStore


def store_snapshot(out):
    """``{hash: (status, result without wall_time_s, weights)}`` of the store in folder ``out`` (a failed run:
    an empty result and no weights)."""
    with ResultStore(out / "results.sqlite") as store:
        rows = store.rows(status=None)
    snap = {}
    for r in rows:
        result = {k: v for k, v in (r["result"] or {}).items() if k != "wall_time_s"}
        weights = load_file(str(out / r["run_dir"] / "model.safetensors")) if r["status"] == "done" else {}
        snap[r["hash"]] = (r["status"], result, weights)
    return snap
