"""The study's figures (matplotlib, PNG and SVG): trade-off, forgetting, and a hyper-parameter ablation.

* :func:`tradeoff` - robust accuracy against clean accuracy, one point per variant, 95% intervals
  over seeds as error bars (the paper's trade-off figure);
* :func:`forgetting` - distance from the pre-trained model over training, in parameter space
  (||theta - theta_0||) and in feature space (mean distance and cosine similarity of student
  and frozen pre-trained pooled features on the dev probe), mean over seeds (paper Fig. 2);
* :func:`ablation` - robust and clean accuracy against one swept value (alpha), with error bars;
* :func:`learning_curves` - dev clean accuracy, dev ASCC robust accuracy and the dev margin over training.

Each returns a :class:`Figure` holding PNG bytes and SVG text; :func:`save` writes both.
"""

from __future__ import annotations

import io
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on these machines
import matplotlib.pyplot as plt  # noqa: E402

# Metadata fixed so that re-rendering the same numbers gives the same bytes (clean diffs of committed plots).
_SVG_META = {"Date": None, "Creator": None}
_PNG_META = {"Software": None}
# The SVG backend names its elements (clip paths, glyphs, markers) by hashing a salt: unset, a fresh uuid per
# savefig, so every render rewrote every committed SVG. A fixed salt makes the ids a function of the content.
# Scoped to our savefig calls (rc_context), not set at import: importing riftkit must not change the rcParams
# of a user's own figures.
_RC = {"svg.hashsalt": "riftkit"}


@dataclass
class Figure:
    name: str
    title: str
    png: bytes
    svg: str
    caption: str = ""


def _render(fig, name: str, title: str, caption: str) -> Figure:
    png, svg = io.BytesIO(), io.StringIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(png, format="png", dpi=110, bbox_inches="tight", metadata=_PNG_META)
        fig.savefig(svg, format="svg", bbox_inches="tight", metadata=_SVG_META)
    plt.close(fig)
    return Figure(name, title, png.getvalue(), svg.getvalue(), caption)


def _err(value: dict) -> tuple[float, list[list[float]]]:
    return 100 * value["mean"], [[100 * (value["mean"] - value["low"])], [100 * (value["high"] - value["mean"])]]


def tradeoff(table: dict, attack: str) -> Figure | None:
    """Robust accuracy under ``attack`` against clean test accuracy, per variant (None without data)."""
    rows = [r for r in table["rows"] if r["attack"] == attack and r.get("robust_accuracy") and r.get("test_accuracy")]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for r in rows:
        x, xerr = _err(r["test_accuracy"])
        y, yerr = _err(r["robust_accuracy"])
        ax.errorbar([x], [y], xerr=xerr, yerr=yerr, fmt="o", capsize=3, label=f"{r['variant']} ({r['n_seeds']} seeds)")
    ax.set_xlabel("clean test accuracy (%)")
    ax.set_ylabel(f"robust accuracy under {attack} (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    caption = f"Robust accuracy under {attack} against clean accuracy; bars: 95% intervals over seeds."
    return _render(fig, f"tradeoff-{attack}", f"Robustness against accuracy ({attack})", caption)


def _panels_over_steps(series: dict[str, dict[str, dict[int, list[float]]]], panels: list[tuple[str, str]]):
    """One panel per (key, title): each variant's mean over seeds against the optimiser step."""
    fig, axes = plt.subplots(1, len(panels), figsize=(13, 3.8))
    for ax, (key, label) in zip(axes, panels):
        for variant, by_key in series.items():
            points = sorted(by_key[key].items())
            if points:
                ax.plot([s for s, _ in points], [sum(v) / len(v) for _, v in points], marker=".", label=variant)
        ax.set_xlabel("optimiser step")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    return fig


def forgetting(runs: list[dict], variants: list[str] | None = None) -> Figure | None:
    """Distance from the pre-trained model over training steps, mean over each variant's seeds."""
    series: dict[str, dict[str, dict[int, list[float]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for run in runs:
        if variants and run["variant"] not in variants:
            continue
        for record in run["metrics"]:
            if record.get("event") not in ("forgetting", "train_epoch") or "theta_distance" not in record:
                continue
            for key in ("theta_distance", "feature_distance", "feature_cosine"):
                if record.get(key) is not None:
                    series[run["variant"]][key][record["step"]].append(record[key])
    if not series:
        return None
    keys = [("theta_distance", "||θ - θ0|| (parameters)"), ("feature_distance", "feature distance to F0"), ("feature_cosine", "feature cosine with F0")]
    fig = _panels_over_steps(series, keys)
    caption = "Distance from the pre-trained encoder during training (mean over seeds); features on a fixed dev probe."
    return _render(fig, "forgetting", "Forgetting the pre-trained model", caption)


CURVES = (("dev_accuracy", "dev clean accuracy (%)", 100), ("dev_robust_ascc", "dev ASCC robust accuracy (%)", 100),
          ("dev_margin_median", "median dev margin", 1))


def learning_curves(runs: list[dict], variants: list[str] | None = None) -> Figure | None:
    """Dev clean accuracy, dev ASCC robust accuracy and median dev margin at every dev evaluation, against the
    optimiser step, mean over each variant's seeds (None unless some variant was evaluated at 3 or more steps)."""
    series: dict[str, dict[str, dict[int, list[float]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for run in runs:
        if variants and run["variant"] not in variants:
            continue
        for record in run["metrics"]:
            if record.get("event") == "eval":
                for key, _, scale in CURVES:
                    if record.get(key) is not None:
                        series[run["variant"]][key][record["step"]].append(scale * record[key])
    if not any(len(by_key["dev_accuracy"]) >= 3 for by_key in series.values()):
        return None
    fig = _panels_over_steps(series, [(key, label) for key, label, _ in CURVES])
    caption = ("Learning curves on dev (mean over seeds): clean accuracy, robust accuracy under the white-box ASCC attack "
               "on selection's subset, and the median signed margin p(true) - max p(other), at every dev evaluation.")
    return _render(fig, "learning-curves", "Learning curves on dev", caption)


def ablation(table: dict, key: str, attack: str, seeds: list[int] | None = None) -> Figure | None:
    """Robust (under ``attack``) and clean accuracy against the swept ``key`` (e.g. objective.alpha).

    ``seeds``: the seeds every point averages (named in the title and caption); None when the points' seeds differ.
    """
    rows = sorted((r for r in table["rows"] if r["attack"] == attack and key in r["params"] and r.get("robust_accuracy")),
                  key=lambda r: r["params"][key])
    if len(rows) < 2:
        return None
    fig, ax = plt.subplots(figsize=(6, 4.2))
    xs = [r["params"][key] for r in rows]
    for metric, label in (("robust_accuracy", f"robust ({attack})"), ("test_accuracy", "clean")):
        values = [r[metric] for r in rows]
        ys = [100 * v["mean"] for v in values]
        err = [[100 * (v["mean"] - v["low"]) for v in values], [100 * (v["high"] - v["mean"]) for v in values]]
        ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=label)
    over = f"mean over seeds {', '.join(map(str, seeds))}" if seeds else "the points average different seeds (see the table)"
    ax.set_title(over, fontsize=9)  # the committed PNG is read without the report's caption
    ax.set_xscale("log")
    ax.set_xlabel(key)
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    caption = f"{key} ablation: accuracy against the value, {over}; bars: 95% intervals over seeds."
    return _render(fig, f"ablation-{key.rsplit('.', 1)[-1]}-{attack}", f"{key} ablation ({attack})", caption)


def save(figure: Figure, folder: str | Path) -> list[Path]:
    """Write ``<name>.png`` and ``<name>.svg`` into ``folder``; returns both paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    png, svg = folder / f"{figure.name}.png", folder / f"{figure.name}.svg"
    png.write_bytes(figure.png)
    svg.write_text(figure.svg, encoding="utf-8")
    return [png, svg]
