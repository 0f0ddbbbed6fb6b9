"""Checkpoints and `riftkit train --resume`: a run killed with SIGKILL and resumed ends bit-identical to an uninterrupted one."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from riftkit.cli import main
from riftkit.config import ConfigError
from riftkit.training import train
from riftkit.training.checkpoint import COMPLETE, latest_checkpoint, list_checkpoints, load_checkpoint
from riftkit.training.log import read_metrics

from .test_training import tiny_config, toy_splits

REPO = Path(__file__).resolve().parents[1]
CLOCKS = ("time_s", "wall_time_s")

# Runs `riftkit train` and, when the run is about to write the checkpoint of step HOLD_AT_STEP, leaves a
# half-written temporary folder, says so in READY and waits there to be killed.
KILLED_RUN = r"""
import os, sys, time
import riftkit.training.loop as loop
from riftkit.cli import main

hold_at = int(os.environ["HOLD_AT_STEP"])
real_save = loop.save_checkpoint

def save_checkpoint(folder, bundle):
    if bundle["trainer"]["state"]["step"] == hold_at:
        partial = folder.with_name(".tmp-" + folder.name)
        partial.mkdir(parents=True, exist_ok=True)
        (partial / "model.safetensors").write_bytes(b"half a file")
        (folder.parent.parent / "READY").write_text(str(hold_at))
        time.sleep(300)
    return real_save(folder, bundle)

loop.save_checkpoint = save_checkpoint
sys.exit(main(sys.argv[1:]))
"""


def tensors_of(folder: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a saved model folder (best/) or a checkpoint, by file and key."""
    found = {}
    for path in sorted(folder.rglob("*.safetensors")):
        found.update({f"{path.relative_to(folder)}:{k}": v.clone() for k, v in load_file(path).items()})  # (not the mmap: files get overwritten)
    for path in sorted(folder.glob("*.pt")):
        flat = _flatten(torch.load(path, weights_only=True), path.name)
        # (python's and numpy's global generators belong to the host process: the run draws from neither)
        found.update({k: v for k, v in flat.items() if isinstance(v, torch.Tensor) and not k.startswith(("rng.pt.numpy", "rng.pt.python"))})
    return found


def _flatten(value, prefix):
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _flatten(item, f"{prefix}.{key}").items()}
    if isinstance(value, (list, tuple)):
        return {k: v for i, item in enumerate(value) for k, v in _flatten(item, f"{prefix}.{i}").items()}
    return {prefix: value}


def assert_bit_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys() and a
    different = [k for k in a if a[k].dtype != b[k].dtype or not torch.equal(a[k], b[k])]
    assert not different, different[:5]


def metrics_without_clocks(path: Path) -> list[dict]:
    return [{k: v for k, v in record.items() if k not in CLOCKS} for record in read_metrics(path)]


@pytest.fixture
def rift_experiment(tmp_path, tiny_encoder_dir):
    """A YAML experiment: RIFT (adversary, info heads, feature queue) on a toy JSONL data set, checkpoints every 2 steps."""
    data = tmp_path / "toy"
    data.mkdir()
    fillers = ["plain", "nice", "long", "short", "old", "new", "dull", "loud"]
    rows = [{"text": f"the {fillers[i % 8]} {'good' if i % 2 else 'bad'} film {fillers[(i * 3) % 8]}", "label": i % 2} for i in range(40)]
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (data / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:8]))
    subs = tmp_path / "subs.json"
    subs.write_text(json.dumps({"good": ["fine", "nice"], "bad": ["poor", "awful"], "film": ["movie"], "plain": ["simple"]}))
    config = tmp_path / "rift.yaml"
    config.write_text(
        f"name: resume\ndata:\n  dataset: {data}\n  labels: [neg, pos]\n  dev_size: 8\n"
        f"model:\n  encoder: {tiny_encoder_dir}\n  max_length: 16\n  head_dropout: 0.1\n"
        "train:\n  method: rift\n  epochs: 3\n  batch_size: 4\n  lr: 1.0e-3\n  balanced_batches: true\n  num_threads: 1\n"
        "  progress: false\n  eval_every_steps: 3\n  log_forgetting_every_steps: 2\n  forgetting_probe_size: 4\n"
        "  select_max_examples: 4\n  select_attack_steps: 1\n  checkpoint_every_steps: 2\n  keep_checkpoints: 2\n"
        f"objective:\n  substitutions: {subs}\n  adv_steps: 2\n  info_queue_size: 6\n"
    )
    return config


def test_sigkilled_rift_run_resumes_bit_identically(rift_experiment, tmp_path):
    """32 training examples, batches of 4: 8 steps an epoch, 24 in all. The killed run dies while writing the
    checkpoint of step 6 (epoch 1, after an eval and a forgetting record that the log must drop), so
    --resume continues from step 4, in the middle of the first epoch."""
    killed, reference = tmp_path / "killed", tmp_path / "reference"
    env = {**os.environ, "HOLD_AT_STEP": "6", "PYTHONPATH": str(REPO / "src")}
    process = subprocess.Popen([sys.executable, "-c", KILLED_RUN, "train", str(rift_experiment), "--output-dir", str(killed)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path)
    try:
        # the uninterrupted run, meanwhile, in this process
        assert main(["train", str(rift_experiment), "--output-dir", str(reference)]) == 0
        deadline = time.time() + 120
        while not (killed / "READY").exists():
            assert process.poll() is None, process.stderr.read().decode()[-3000:]
            assert time.time() < deadline, "the run never reached step 6"
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
    (killed / "READY").unlink()
    assert [step for step, _ in list_checkpoints(killed / "checkpoints")] == [2, 4]
    assert (killed / "checkpoints" / ".tmp-step-6").is_dir()
    before = read_metrics(killed / "metrics.jsonl")
    assert any(r["event"] == "eval" and r["step"] == 6 for r in before)  # written after the step-4 checkpoint

    resumed = subprocess.run([sys.executable, "-m", "riftkit.cli", "train", str(rift_experiment), "--output-dir", str(killed), "--resume"],
                             env=env, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stderr and "step-4" in resumed.stderr

    assert metrics_without_clocks(killed / "metrics.jsonl") == metrics_without_clocks(reference / "metrics.jsonl")
    assert_bit_identical(tensors_of(killed / "best"), tensors_of(reference / "best"))
    assert [step for step, _ in list_checkpoints(killed / "checkpoints")] == [22, 24]
    assert not (killed / "checkpoints" / ".tmp-step-6").exists()
    final_killed, final_reference = latest_checkpoint(killed / "checkpoints"), latest_checkpoint(reference / "checkpoints")
    assert_bit_identical(tensors_of(final_killed), tensors_of(final_reference))
    state = load_checkpoint(final_killed)
    assert state["trainer"]["state"]["step"] == 24 and state["objective"]["task_term"]["step"] == 24
    assert int(state["objective"]["info"]["queue.count"].sum()) == 12  # both classes' queues filled
    for name in ("summary.json",):
        a, b = (json.loads((run / name).read_text()) for run in (killed, reference))
        assert {k: v for k, v in a.items() if k not in CLOCKS + ("best_model",)} == {k: v for k, v in b.items() if k not in CLOCKS + ("best_model",)}


def test_resume_refuses_a_changed_config_and_names_the_keys(rift_experiment, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", str(rift_experiment), "--output-dir", str(out), "train.epochs=1", "objective.adv_steps=1"]) == 0
    capsys.readouterr()
    code = main(["train", str(rift_experiment), "--output-dir", str(out), "train.epochs=1", "objective.adv_steps=1",
                 "train.lr=1.0e-5", "--resume", "train.progress=true", "train.num_threads=2"])
    err = capsys.readouterr().err
    assert code == 2 and "train.lr: 0.001 -> 1e-05" in err
    assert "progress" not in err  # not a result field: it may change
    assert "train.num_threads: 1 -> 2" in err  # a result field: other threads, other last bits (test_result_fields.py)
    with pytest.raises(ConfigError, match=r"objective\.beta: 10\.0 -> 5\.0"):
        from riftkit.config import load_config
        from riftkit.data import load_splits

        config = load_config(rift_experiment, [f"output_dir={out}", "train.epochs=1", "objective.adv_steps=1", "objective.beta=5.0"])
        train(config, load_splits(config.data), resume=True)


def test_half_written_checkpoints_are_ignored_and_resume_is_exact(make_tiny, tmp_path):
    """Standard training, 4 steps an epoch, checkpoints every 2 steps. Later checkpoints broken in the two ways
    a kill leaves them (a temporary folder; a step folder without its completion marker) are skipped: the run
    resumes from step 6 and ends exactly as it did."""
    splits = toy_splits()
    config = tiny_config(tmp_path, epochs=2, checkpoint_every_steps=2, keep_checkpoints=3, eval_every_steps=3)
    config.model.head_dropout = 0.1
    first = train(config, splits, model=make_tiny(head_dropout=0.1))
    out = first.output_dir
    checkpoints = out / "checkpoints"
    assert [step for step, _ in list_checkpoints(checkpoints)] == [4, 6, 8]  # keep_checkpoints: 3
    reference_metrics, reference_best = metrics_without_clocks(out / "metrics.jsonl"), tensors_of(out / "best")
    reference_final = tensors_of(checkpoints / "step-8")
    shutil.copytree(checkpoints / "step-8", tmp_path / "step-8")
    (checkpoints / "step-8" / COMPLETE).unlink()  # killed before the marker (cannot happen with the rename; still refused)
    (checkpoints / "step-8" / "model.safetensors").write_bytes(b"truncated")
    (checkpoints / ".tmp-step-9").mkdir()
    (checkpoints / ".tmp-step-9" / "model.safetensors").write_bytes(b"half")
    assert latest_checkpoint(checkpoints) == checkpoints / "step-6"

    second = train(config, splits, model=make_tiny(head_dropout=0.1), resume=True)
    assert second.best_dev == first.best_dev and second.test == first.test
    assert metrics_without_clocks(out / "metrics.jsonl") == reference_metrics
    assert_bit_identical(tensors_of(out / "best"), reference_best)
    assert_bit_identical(tensors_of(checkpoints / "step-8"), reference_final)
    assert not (checkpoints / ".tmp-step-9").exists()


def test_keep_checkpoints_keeps_the_last_k_and_a_new_run_starts_clean(make_tiny, tmp_path, capsys):
    splits = toy_splits()
    config = tiny_config(tmp_path, epochs=3, checkpoint_every_steps=1, keep_checkpoints=2)
    train(config, splits, model=make_tiny(), evaluate_test=False)
    checkpoints = Path(config.output_dir) / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step-11", "step-12"]
    # a run without --resume into the same folder never leaves the old run's checkpoints to be resumed
    config.train.epochs, config.train.checkpoint_every_steps = 1, 0
    train(config, splits, model=make_tiny(), evaluate_test=False)
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step-4"]
    # --resume with nothing to resume from starts from scratch, and says so
    shutil.rmtree(checkpoints)
    result = train(config, splits, model=make_tiny(), evaluate_test=False, resume=True)
    assert "starting from scratch" in capsys.readouterr().err
    assert result.state.step == 4
    assert [r["event"] for r in read_metrics(Path(config.output_dir) / "metrics.jsonl")][:1] == ["start"]
    assert sum(r["event"] == "start" for r in read_metrics(Path(config.output_dir) / "metrics.jsonl")) == 1


def test_warm_starts_are_checkpointed_and_resume_bit_identically(make_tiny, tmp_path):
    """objective.adversary.warm_starts (issue 24, item 3): each example's search starts where its previous one ended;
    the remembered starts go into the checkpoint, so a run resumed mid-way ends bit-identical; and they matter: the
    same run without them ends elsewhere."""
    from riftkit.config import AdversaryConfig, ObjectiveConfig

    substitutions = tmp_path / "substitutions.json"
    substitutions.write_text(json.dumps({"good": ["fine", "nice", "decent"], "bad": ["poor", "lousy", "awful"], "film": ["movie", "picture"],
                                         "plot": ["story"]}))
    splits = toy_splits()

    def config_with(warm_starts: int, folder: str):
        config = tiny_config(tmp_path / folder, epochs=3, checkpoint_every_steps=2, keep_checkpoints=10, method="adv")
        config.objective = ObjectiveConfig(substitutions=str(substitutions),
                                           adversary=AdversaryConfig(steps=1, lr=10.0, hull="length_groups", warm_starts=warm_starts))
        return config

    config = config_with(100, "warm")
    first = train(config, splits, model=make_tiny(), evaluate_test=False)
    checkpoints = first.output_dir / "checkpoints"
    reference_best, reference_final = tensors_of(first.output_dir / "best"), tensors_of(checkpoints / "step-12")
    remembered = torch.load(checkpoints / "step-6" / "objective.pt", weights_only=True)["task_term"]["warm_starts"]
    assert sorted(remembered["uids"]) == sorted(e.uid for e in splits.train)  # 32 examples, 4 steps of 8: all searched
    for step in (8, 10, 12):
        shutil.rmtree(checkpoints / f"step-{step}")
    train(config, splits, model=make_tiny(), resume=True, evaluate_test=False)
    assert_bit_identical(tensors_of(first.output_dir / "best"), reference_best)
    assert_bit_identical(tensors_of(checkpoints / "step-12"), reference_final)

    cold = train(config_with(0, "cold"), splits, model=make_tiny(), evaluate_test=False)
    cold_final = tensors_of(cold.output_dir / "checkpoints" / "step-12")
    assert any(not torch.equal(v, cold_final[k]) for k, v in reference_final.items() if k.startswith("model.safetensors"))


def test_warm_starts_keep_the_remembered_candidates_and_forget_the_oldest_examples(tokenizer):
    from riftkit.data import Example
    from riftkit.objectives.ascc import LOG_WEIGHT_FLOOR, WarmStarts
    from riftkit.substitutions import SubstitutionSet
    from riftkit.substitutions.hull import HullBuilder

    hulls = HullBuilder(tokenizer, SubstitutionSet({"good": ["fine", "nice"], "bad": ["poor", "awful"]}))
    examples = [Example((("a", "good", "film"),), 1, "g"), Example((("bad", "film"),), 0, "b")]
    encoding = tokenizer([list(e.segments[0]) for e in examples], is_split_into_words=True, padding=True, return_tensors="pt")
    hull = hulls.build(examples, encoding, [0])
    warm = WarmStarts(max_examples=1)
    weights = torch.tensor([[[0.1, 0.8, 0.1]], [[0.0, 0.5, 0.5]]])
    warm.remember(hull, ["g", "b"], weights)
    assert list(warm.memory) == ["b"]  # one example kept: the most recent
    fresh = torch.full((2, 1, 3), 0.25)
    z = warm.starts(hull, ["g", "b"], fresh)
    assert torch.equal(z[0], fresh[0])  # forgotten: the random start
    assert z[1, 0, 0] == LOG_WEIGHT_FLOOR and torch.allclose(torch.softmax(z[1, 0], -1), torch.tensor([0.0, 0.5, 0.5]), atol=1e-4)
    state = warm.state_dict()
    again = WarmStarts(1)
    again.load_state_dict(state)
    assert torch.equal(again.starts(hull, ["g", "b"], fresh), z)


def test_a_run_begun_on_the_same_length_hull_does_not_resume_on_the_new_default(tmp_path):
    """Issue 24 changed the hulls' default to length_groups: a run whose saved config.yaml predates the keys ran on
    the same-length hull, so resuming it with today's defaults is refused, naming the keys; with the old hull it resumes."""
    from riftkit.config import ExperimentConfig, TrainConfig, load_config, save_config
    from riftkit.training.loop import check_resumable

    config = ExperimentConfig(train=TrainConfig(method="adv"))
    save_config(config, tmp_path / "config.yaml")
    text = (tmp_path / "config.yaml").read_text()
    assert text.count("hull: length_groups") == 2
    (tmp_path / "config.yaml").write_text("\n".join(line for line in text.splitlines() if "hull:" not in line) + "\n")
    with pytest.raises(ConfigError, match=r"objective\.adversary\.hull.*same_length.*length_groups"):
        check_resumable(tmp_path, config)
    check_resumable(tmp_path, load_config(None, ["train.method=adv", "objective.adversary.hull=same_length", "attack.ascc.hull=same_length"]))


def test_an_ascc_attack_folder_begun_before_the_hull_setting_resumes_only_on_the_same_length_hull(tmp_path):
    from riftkit.attacks.runner import check_settings

    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"attack": "ascc", "ascc": {"steps": 10, "decode": "strong", "restarts": 1, "candidates": 16,
                                                            "enumerate_max": 64, "examples_per_search": 32}}))
    asked = {"attack": "ascc", "ascc": {"steps": 10, "decode": "strong", "restarts": 1, "candidates": 16, "enumerate_max": 64,
                                        "examples_per_search": 32, "hull": "length_groups"}}
    with pytest.raises(ConfigError, match="ascc"):
        check_settings(path, asked)
    check_settings(path, {**asked, "ascc": {**asked["ascc"], "hull": "same_length"}})
