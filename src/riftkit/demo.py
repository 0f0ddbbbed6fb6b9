"""``riftkit demo``: the main job on the embedded defaults, sized for 2 CPU cores.

Fine-tunes the embedded MiniLM (6 layers, real pre-trained weights) on the same
SST-2 phrases twice, with Standard fine-tuning and with RIFT; attacks both with
PWWS on the same seeded test sentences (the GLUE dev set); prints the two side
by side and writes the HTML report (``<output>/report.html``).

The demo is a one-seed sweep: it writes its experiment (``base.yaml``) and sweep
(``sweep.yaml``) into the output folder and runs them with :mod:`riftkit.sweep`,
so it resumes when run again, and ``riftkit sweep <output>/sweep.yaml`` (with
``seeds=[0,1,2]``, say) grows it into a study.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from .config import AdversaryConfig, DataConfig, ExperimentConfig, InfoConfig, ModelConfig, ObjectiveConfig, TrainConfig, load_config, save_config

# Sized from the dev learning curves (configs/study/curves_sst2.yaml, results/curves-sst2): 125 optimiser steps is
# the first point where RIFT's dev ASCC robust accuracy (0.370) stood clear of Standard's (0.240, same 200 phrases),
# and the only one that fits 15 minutes on 2 CPU cores for both trainings and both attacks. So: 4,000 SST-2 phrases,
# one epoch of batch 32 (125 steps) for both methods, 48 tokens, dev 500 phrases (ASCC robust accuracy on a seeded
# 100, to fit the time). RIFT as in the curves: issue 24's length-group hulls with K = 2 ascent steps at inner lr 5, beta 10, alpha
# 0.03 (the 64-step study's dev choice over the paper's 0.1). lr 5e-5, no warm-up, class-balanced batches for both.
BASE = ExperimentConfig(
    name="demo",
    output_dir="runs/demo",
    data=DataConfig(dataset="sst2", dev_size=500, max_train=4000, seed=0),
    model=ModelConfig(encoder="embedded", max_length=48),
    train=TrainConfig(method="standard", epochs=1, batch_size=32, lr=5e-5, seed=0, balanced_batches=True, select_max_examples=100,
                      eval_robust_ascc=True),
    # info.kind auto: conditional for RIFT, none for Standard
    objective=ObjectiveConfig(beta=10.0, adversary=AdversaryConfig(steps=2, lr=5.0), info=InfoConfig(alpha=0.03)),
)
TEST_EXAMPLES = 300  # PWWS on a seeded 300 of the 872 test sentences, the same for both models


def sweep_file(output_dir: Path, test_examples: int = TEST_EXAMPLES) -> dict:
    return {
        "name": "demo",
        "base": "base.yaml",
        "output_dir": str(output_dir),
        "seeds": [0],
        "baseline": "standard",
        "methods": {"standard": {"overrides": {"train.method": "standard"}}, "rift": {"overrides": {"train.method": "rift"}}},
        "evaluation": {"attack": {"seed": 0, "split": "test", "n": test_examples}, "attacks": [{"attack": "pwws"}]},
    }


def run_demo(overrides: list[str], output_dir: str | None, data_dir: str | None, progress: bool = True, test_examples: int | None = None) -> int:
    """Write the demo's base and sweep files, run the sweep, print the table, write the report."""
    from .reports.build import write
    from .sweep import load_sweep
    from .sweep.collect import collect
    from .sweep.runner import Sweep

    out = Path(output_dir or BASE.output_dir)
    test_examples = TEST_EXAMPLES if test_examples is None else test_examples
    out.mkdir(parents=True, exist_ok=True)
    base = load_config(None, overrides, base=BASE)  # typed and checked here, before any training
    save_config(base, out / "base.yaml")
    (out / "sweep.yaml").write_text(yaml.safe_dump(sweep_file(out, test_examples), sort_keys=False))
    print(f"riftkit demo: Standard and RIFT on {base.data.max_train} SST-2 phrases, PWWS on {test_examples} test sentences -> {out}",
          file=sys.stderr)
    sweep = Sweep(load_sweep(out / "sweep.yaml"), data_dir=data_dir, progress=progress)
    sweep.run_all()
    table = collect(sweep)
    print(side_by_side(table))
    report = write(out)
    print(f"report: {report}")
    return 0


def side_by_side(table: dict) -> str:
    """Standard and RIFT in two columns: clean and robust accuracy, success rate, dev selection numbers."""
    rows = {r["variant"]: r for r in table["rows"]}
    names = [n for n in ("standard", "rift") if n in rows]

    def pct(row: dict, key: str) -> str:
        value = row.get(key)
        return "–" if not value else f"{100 * value['mean']:.1f}%"

    lines = [("", *names)]
    for key, label in (("test_accuracy", "clean accuracy (whole test split)"), ("vanilla_accuracy", "clean accuracy (attacked sample)"),
                       ("robust_accuracy", "robust accuracy under PWWS"), ("success_rate", "attack success rate"),
                       ("dev_accuracy", "dev accuracy"), ("dev_robust_ascc", "dev robust accuracy (ASCC)")):
        lines.append((label, *(pct(rows[n], key) for n in names)))
    width = max(len(line[0]) for line in lines)
    text = [f"{line[0]:<{width}}  " + "  ".join(f"{cell:>10}" for cell in line[1:]) for line in lines]
    diff = rows.get("rift", {}).get("vs_baseline")
    if diff:
        text.append(f"RIFT - Standard, robust accuracy: {100 * diff['mean']:+.1f} points "
                    f"(95% bootstrap interval over the attacked sentences {100 * diff['low']:+.1f} to {100 * diff['high']:+.1f})")
    return "\n".join(text)
