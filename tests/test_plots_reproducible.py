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


CURVE_RUNS = [{"variant": v, "metrics": [{"event": "eval", "step": s, "dev_accuracy": 0.5 + 0.01 * s, "dev_robust_ascc": 0.2 + k * 0.005 * s,
                                           "dev_margin_median": 0.05 * s} for s in range(1, 6)]} for k, v in enumerate(("standard", "adv"))]


def test_learning_curves_plot_every_dev_evaluation_and_need_three():
    figure = plots.learning_curves(CURVE_RUNS)
    assert figure.name == "learning-curves" and figure.svg.count("standard") >= 1 and figure.svg.count("adv") >= 1
    two_points = [{"variant": "x", "metrics": [{"event": "eval", "step": s, "dev_accuracy": 0.5} for s in (1, 2)]}]
    assert plots.learning_curves(two_points) is None


def _figures() -> list[plots.Figure]:
    return [plots.tradeoff(TABLE, "pwws"), plots.forgetting(RUNS), plots.ablation(TABLE, "objective.alpha", "pwws", [0, 1, 2]),
            plots.learning_curves(CURVE_RUNS)]


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
