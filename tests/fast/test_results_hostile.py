"""Run directories from an untrusted source: a checkpoint holding a malicious pickle is refused without executing
it, and a result.json cannot point the loader outside its directory."""

import json
import pickle

import pytest

from georecall.config import RunConfig, TaskConfig, TrainConfig
from georecall.results import load_run, save_run
from georecall.training import train


class _Payload:
    """Unpickling this writes a file: the attack a pickled checkpoint allows."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def run_dir(tmp_path):
    run = train(RunConfig(task=TaskConfig(n_subjects=8, n_relations=2), train=TrainConfig(steps=2, device="cpu")))
    return save_run(run, tmp_path / "run")


@pytest.mark.parametrize("victim", ["model.safetensors", "worlds.safetensors"])
def test_a_pickle_in_place_of_the_weights_is_refused_and_never_executed(run_dir, tmp_path, victim):
    marker = tmp_path / "pwned"
    (run_dir / victim).write_bytes(pickle.dumps(_Payload(str(marker))))
    with pytest.raises(ValueError, match="never unpickles"):
        load_run(run_dir)
    assert not marker.exists()


@pytest.mark.parametrize("weights", ["../elsewhere.safetensors", "model.pt", "/etc/passwd"])
def test_result_json_cannot_name_weights_outside_the_run_directory(run_dir, weights):
    raw = json.loads((run_dir / "result.json").read_text())
    raw["weights"] = weights
    (run_dir / "result.json").write_text(json.dumps(raw))
    with pytest.raises(ValueError, match="only a .safetensors file inside"):
        load_run(run_dir)


def test_a_clean_run_directory_loads(run_dir):
    assert load_run(run_dir).result.n_params["total"] > 0
