"""Re-rendering the same numbers gives the same bytes: committed plots stay clean in git after a collect."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from riftkit.reports import plots


def _interval(mean: float) -> dict:
    return {"mean": mean, "low": mean - 0.02, "high": mean + 0.015}


TABLE = {"rows": [
    {"variant": variant, "attack": "pwws", "n_seeds": 3, "params": {"objective.alpha": alpha},
     "test_accuracy": _interval(clean), "robust_accuracy": _interval(robust)}
    for variant, alpha, clean, robust in (("standard", 0.01, 0.91, 0.12), ("rift", 0.1, 0.89, 0.31), ("rift-b", 1.0, 0.88, 0.36))
]}
RUNS = [{"variant": "rift", "metrics": [{"event": "forgetting", "step": s, "theta_distance": 0.1 * s, "feature_distance": 0.2 * s,
                                         "feature_cosine": 1 - 0.01 * s} for s in range(1, 6)]}]


def _figures() -> list[plots.Figure]:
    return [plots.tradeoff(TABLE, "pwws"), plots.forgetting(RUNS), plots.ablation(TABLE, "objective.alpha", "pwws", [0, 1, 2])]


def _digests() -> dict:
    return {f.name: [hashlib.sha256(f.png).hexdigest(), hashlib.sha256(f.svg.encode()).hexdigest()] for f in _figures()}


def test_the_same_figure_renders_to_the_same_bytes_twice_in_one_process():
    first, second = _figures(), _figures()
    for a, b in zip(first, second):
        assert a.svg == b.svg, f"{a.name}: SVG text differs between two renders"
        assert a.png == b.png, f"{a.name}: PNG bytes differ between two renders"
        assert "<dc:date>" not in a.svg  # no date metadata


def test_the_same_figure_renders_to_the_same_bytes_in_two_processes():
    code = "import json, tests.test_plots_reproducible as t; print(json.dumps(t._digests()))"
    outputs = [json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                         cwd=Path(__file__).resolve().parents[1]).stdout)
               for _ in range(2)]
    assert outputs[0] == outputs[1] == _digests()
