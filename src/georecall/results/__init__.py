"""Run directories: save a training run, load it back, and its provenance."""

from georecall.results.run import SCHEMA_VERSION, TrainResult, TrainRun, is_complete, load_run, run_meta, save_run

__all__ = ["SCHEMA_VERSION", "TrainResult", "TrainRun", "is_complete", "load_run", "run_meta", "save_run"]
