"""Attack evaluation in shards (several processes or machines on one folder): merged, it equals one process's run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from riftkit.attacks import runner
from riftkit.attacks.runner import ResultLog, merge_shards, run_attack
from riftkit.cli import main

from .test_attacks_runner import WEIGHTS, LabelledVictim, config, crash_after, saved_model_and_data, subs_file, toy_splits  # noqa: F401

QUIET = {"progress": False, "log": lambda m: None}


def lines(folder) -> dict[str, dict]:
    """The folder's records by uid (a single process appends them as they finish, a merge in sample order)."""
    records = [json.loads(x) for x in (folder / runner.RESULTS_FILE).read_text().splitlines()]
    assert len({r["uid"] for r in records}) == len(records)
    return {r["uid"]: r for r in records}


@pytest.mark.parametrize("attack", ["pwws", "genetic"])
def test_shards_merged_equal_a_single_process_run(tmp_path, subs_file, attack):
    splits, model = toy_splits(12), LabelledVictim(WEIGHTS, bias=-1.0)
    cfg = config(subs_file, attack, lm="none")
    whole = run_attack(model, splits, cfg, "toy", tmp_path / "whole", **QUIET)
    sharded = tmp_path / "sharded"
    parts = [run_attack(model, splits, cfg, "toy", sharded, shard=(i, 3), **QUIET) for i in range(3)]
    assert sum(p["n"] for p in parts) == whole["n"] and not (sharded / runner.SUMMARY_FILE).exists()
    assert sorted(p.name for p in sharded.glob("examples.shard-*")) == [f"examples.shard-{i}-of-3.jsonl" for i in range(3)]
    merged = run_attack(model, splits, cfg, "toy", sharded, **QUIET)
    assert merged["examples_this_session"] == 0 and not list(sharded.glob("examples.shard-*"))
    assert lines(sharded) == lines(tmp_path / "whole")  # the same records
    keys = ("n", "robust_accuracy", "vanilla_accuracy", "success_rate", "mean_queries")
    assert {k: merged[k] for k in keys} == {k: whole[k] for k in keys}


def test_a_killed_shard_resumes_and_a_killed_merge_does_not_duplicate(tmp_path, subs_file, monkeypatch):
    splits, model = toy_splits(12), LabelledVictim(WEIGHTS, bias=-1.0)
    cfg = config(subs_file, "pwws", lm="none", n=12)
    run_attack(model, splits, cfg, "toy", tmp_path / "whole", **QUIET)
    lines_of = lines(tmp_path / "whole")
    folder = tmp_path / "sharded"
    with crash_after(monkeypatch, 2), pytest.raises(KeyboardInterrupt):
        run_attack(model, splits, cfg, "toy", folder, shard=(0, 2), **QUIET)
    resumed = run_attack(model, splits, cfg, "toy", folder, shard=(0, 2), **QUIET)
    assert resumed["n"] == 6 and len(ResultLog(folder / "examples.shard-0-of-2.jsonl").read()) == 6
    run_attack(model, splits, cfg, "toy", folder, shard=(1, 2), **QUIET)
    # a merge killed after appending, before removing the shard logs: the next merge appends nothing twice
    shard_logs = {p: p.read_text() for p in folder.glob("examples.shard-*")}
    merge_shards(folder, list(lines_of))
    for path, text in shard_logs.items():
        path.write_text(text)
    assert merge_shards(folder, list(lines_of)) == 0
    summary = run_attack(model, splits, cfg, "toy", folder, **QUIET)
    assert lines(folder) == lines_of and summary["n"] == 12


def test_cli_shards_and_accelerate_launch(tmp_path, make_tiny, subs_file, capsys):
    model_dir, data = saved_model_and_data(tmp_path, make_tiny)
    base = ["attack", "--model", str(model_dir), "--attack", "pwws", "--n", "8", "--dataset", str(data), "--quiet",
            "data.labels=[negative, positive]", f"attack.substitutions={subs_file}", "attack.lm=none", "attack.backend=torch"]
    assert main([*base, "--output-dir", str(tmp_path / "one")]) == 0
    for i in range(2):
        assert main([*base, "--output-dir", str(tmp_path / "two"), "--shard", f"{i}/2"]) == 0
    assert main([*base, "--output-dir", str(tmp_path / "two")]) == 0
    assert lines(tmp_path / "two") == lines(tmp_path / "one")
    assert main([*base, "--output-dir", str(tmp_path / "bad"), "--shard", "2of2"]) == 2
    # two processes (CPU, gloo) as `accelerate launch --multi_gpu` starts them on GPUs (torchrun underneath; Accelerate's
    # own CPU launch is MPI): they shard, wait for each other through Accelerate, and the main one merges
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517", "-m", "riftkit.cli"]
    launched = [a for a in base if a not in ("--n", "8")] + ["attack.n=8"]  # torchrun's parser would take "--n" as its own
    done = subprocess.run([*launcher, *launched, "--output-dir", str(tmp_path / "launched")], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[:3000]
    assert lines(tmp_path / "launched") == lines(tmp_path / "one")
    sessions = [json.loads(x) for x in (tmp_path / "launched" / "sessions.jsonl").read_text().splitlines()]
    assert sorted(tuple(s["shard"]) for s in sessions if s["shard"]) == [(0, 2), (1, 2)]
