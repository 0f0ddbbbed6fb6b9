"""scripts/paper_gpu.sh, dry-run on CPU at a tiny size: every method, tuning, all three attacks, both tasks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO


@pytest.mark.slow
@pytest.mark.parametrize("task", ["imdb", "snli"])
def test_paper_protocol_dry_run(task, tmp_path, tiny_encoder_dir, data_dir):
    riftkit = Path(sys.executable).with_name("riftkit")
    env = {**os.environ, "DRY_RUN": str(tmp_path), "SEEDS": "[0]", "RIFTKIT": str(riftkit), "RIFTKIT_DATA_DIR": str(data_dir)}
    done = subprocess.run(["bash", str(REPO / "scripts" / "paper_gpu.sh"), str(tiny_encoder_dir), task], env=env, capture_output=True,
                          text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    table = json.loads((tmp_path / f"results-{task}" / "table.json").read_text())
    variants = {r["variant"] for r in table["rows"]}
    assert variants == {"standard", "adv_base", "adv_ptwd", "adv_mixout", "rift"}
    assert {len(t) for t in table["tuning"].values()} == {3} and all(any(r.get("won") for r in t) for t in table["tuning"].values())
    assert len(table["attacks"]) == 3 and all(r["n_examples"] == 3 for r in table["rows"])
    run = json.loads((tmp_path / f"results-{task}" / "runs" / "rift-seed0" / "run.json").read_text())
    assert run["config"]["model"]["encoder"] == str(tiny_encoder_dir) and run["config"]["train"]["epochs"] == 1
    assert run["config"]["objective"]["alpha"] == (0.1 if task == "imdb" else 0.7)
