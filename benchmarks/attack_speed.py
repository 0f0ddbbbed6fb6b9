"""riftkit's PWWS and Genetic against TextAttack's, on one victim, the same examples, the same substitutions.

One run, side by side: examples per second and robust accuracy (correct and the
attack failed), plus success rate and queries. TextAttack runs in its own
environment (created on first use, see textattack_env.py) in a subprocess,
attacking the same riftkit model through riftkit's TextAttack wrapper.

    RIFTKIT_DATA_DIR=../shared/data .venv/bin/python benchmarks/attack_speed.py \
        --victim runs/cpu-sst2-standard/best --n 20

riftkit's PWWS runs twice: as METHOD.md defines it (substitutes chosen on the
clean text) and adaptive (re-scored on the current text at each step, what
TextAttack's GreedyWordSwapWIR does); the speed ratio compares like with like.
Both sides: counter-fitted substitutes of the original word only, no
language-model constraint (TextAttack's needs a download), no stopword filter,
Genetic with population 60 and 40 generations, TextAttack's Genetic as shipped
and with its parent-selection sign corrected. Writes
benchmarks/results/attack_speed.json.

Besides speed and strength the table shows where the time goes: "to model"
counts the texts that reached the model (after each side's cache), "per call"
the texts per model call, "model s" the seconds spent inside the model. On a
CPU a forward pass costs about the same per text at 4 texts a call as at 100,
so a search whose time is mostly model time cannot get much faster by
batching; on a GPU it can. ``--device cuda`` runs both sides there.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import textattack_env  # noqa: E402

from riftkit.attacks.registry import AttackSetup, build_attack  # noqa: E402
from riftkit.models.backends import resolve_backend  # noqa: E402
from riftkit.evaluation.outcomes import summarize  # noqa: E402
from riftkit.config import AttackConfig, DataConfig, PWWSConfig, resolve_data_dir  # noqa: E402
from riftkit.data import load_splits, sample  # noqa: E402
from riftkit.models import load_classifier  # noqa: E402
from riftkit.substitutions import load_substitutions  # noqa: E402
from riftkit.substitutions.sets import COUNTERFITTED_FILE  # noqa: E402

RIFTKIT_ATTACKS = ["pwws", "pwws-adaptive", "genetic"]
TEXTATTACK_ATTACKS = ["textattack-pwws", "textattack-genetic", "textattack-genetic-sign-fixed"]
# each TextAttack search against riftkit's implementation of the same algorithm
PAIRS = {"textattack-pwws": "pwws-adaptive", "textattack-genetic": "genetic", "textattack-genetic-sign-fixed": "genetic"}


def run_riftkit(model, task, subs, examples, name: str, seed: int, batch_size: int, backend: str = "torch") -> dict:
    # "pwws-adaptive": PWWS re-scoring substitutes on the current text, the variant TextAttack implements
    config = AttackConfig(attack=name.removesuffix("-adaptive"), pwws=PWWSConfig(adaptive=name.endswith("-adaptive")), seed=seed, lm="none",
                          batch_size=batch_size, in_flight=len(examples))
    # riftkit's forward path (attack.backend): "torch" is fp32 PyTorch (the path before bf16 with rechecks), "auto" the default
    victim, chosen = resolve_backend(model, backend, [e.segments for e in examples[:64]])
    attack = build_attack(AttackSetup(model=model, task=task, substitutions=subs, config=config, victim=victim))
    model_s = [0.0]
    victim = attack.queries.victim

    class TimedVictim:  # the seconds spent inside the model, as the TextAttack side measures them
        def predict_proba(self, segments, batch_size):
            start = time.perf_counter()
            out = victim.predict_proba(segments, batch_size=batch_size)
            model_s[0] += time.perf_counter() - start
            return out

    attack.queries.victim = TimedVictim()
    start = time.perf_counter()
    results = attack.attack(examples)
    wall = time.perf_counter() - start
    records = [r.to_record(task.segment_names) for r in results]
    return {"wall_s": wall, "backend": chosen["backend"], "summary": summarize(records), "model_texts": attack.queries.model_texts, "model_calls": attack.queries.model_calls,
            "model_s": model_s[0], "outcomes": {r["uid"]: r["outcome"] for r in records}}


def run_textattack(python: Path, victim: str, examples, subs_path: Path, names, seed: int, threads: int, batch_size: int, timeout: int, device: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        job = Path(tmp) / "job.json"
        out = Path(tmp) / "out.json"
        job.write_text(json.dumps({"victim": str(Path(victim).resolve()), "substitutions": str(subs_path), "attacks": names, "seed": seed,
                                   "threads": threads, "batch_size": batch_size, "device": device,
                                   "examples": [{"uid": e.uid, "text": " ".join(e.segments[0]), "label": e.label} for e in examples]}))
        try:
            subprocess.run([str(python), str(HERE / "textattack_side.py"), str(job), str(out)], env=textattack_env.offline_env(), check=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            print(f"TextAttack timed out after {timeout} s; reporting the attacks it finished", file=sys.stderr)
        report = json.loads(out.read_text()) if out.is_file() else {"attacks": {}}
    report["attacks"] = {name: run for name, run in report["attacks"].items() if run["examples"]}
    for name, run in report["attacks"].items():
        rows = run["examples"]
        records = [{"outcome": r["outcome"], "queries": r["queries"], "changed_share": r["changed"] / max(r["words"], 1), "original": " " * max(r["words"] - 1, 0)} for r in rows]
        run["summary"] = summarize(records)
        run["outcomes"] = {r["uid"]: r["outcome"] for r in rows}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--victim", default="runs/cpu-sst2-standard/best", help="a riftkit model folder fine-tuned on SST-2")
    parser.add_argument("--n", type=int, default=20, help="SST-2 test (GLUE dev) sentences, a seeded sample")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32, help="texts per model forward, both sides")
    parser.add_argument("--device", default="cpu", help="where the victim runs, both sides (e.g. cuda)")
    parser.add_argument("--data-dir")
    parser.add_argument("--ta-venv", default=str(textattack_env.DEFAULT_VENV))
    parser.add_argument("--ta-timeout", type=int, default=1500, help="seconds for the whole TextAttack side")
    parser.add_argument("--skip-textattack", action="store_true")
    parser.add_argument("--backends", nargs="+", default=["torch", "auto"],
                        help="riftkit's forward paths, each a row per attack (torch: fp32; auto: the default, bf16 with rechecks)")
    parser.add_argument("--riftkit-attacks", nargs="+", default=RIFTKIT_ATTACKS)
    parser.add_argument("--textattack-attacks", nargs="+", default=TEXTATTACK_ATTACKS)
    parser.add_argument("--output", default=str(HERE / "results" / "attack_speed.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model = load_classifier(args.victim).to(args.device)
    if model.spec.task != "sst2":
        print(f"note: the victim was fine-tuned on {model.spec.task}, the benchmark attacks SST-2", file=sys.stderr)
    splits = load_splits(DataConfig(dataset="sst2"), args.data_dir)
    examples = sample(splits.test, args.n, args.seed)
    subs = load_substitutions("counterfitted", args.data_dir)
    subs_path = resolve_data_dir(None, args.data_dir) / COUNTERFITTED_FILE

    results: dict[str, dict] = {}
    for name in args.riftkit_attacks:
        for backend in args.backends:
            suffix = "" if backend == "torch" else f"@{backend}"
            results[f"riftkit-{name}{suffix}"] = run_riftkit(model, splits.task, subs, examples, name, args.seed, args.batch_size, backend)
        print(f"riftkit-{name}: {len(examples)} examples in {results[f'riftkit-{name}']['wall_s']:.1f} s", file=sys.stderr, flush=True)
    if not args.skip_textattack:
        python = textattack_env.ensure_env(Path(args.ta_venv), log=lambda m: print(m, file=sys.stderr))
        report = run_textattack(python, args.victim, examples, subs_path, args.textattack_attacks, args.seed, args.threads, args.batch_size, args.ta_timeout, args.device)
        results.update(report["attacks"])

    rows = []
    for name, run in results.items():
        s = run["summary"]
        row = {"attack": name, "examples": s["n"], "wall_s": round(run["wall_s"], 2), "examples_per_s": round(s["n"] / run["wall_s"], 4),
               "robust_accuracy": s["robust_accuracy"], "vanilla_accuracy": s["vanilla_accuracy"], "success_rate": s["success_rate"],
               "mean_queries": round(s["mean_queries"], 1), "mean_changed_share": round(s["mean_changed_share"], 4),
               "model_texts": run.get("model_texts"), "model_calls": run.get("model_calls"), "model_s": round(run.get("model_s", 0.0), 2)}
        row["texts_per_call"] = round(row["model_texts"] / row["model_calls"], 1) if row["model_calls"] else None
        if not run.get("complete", True):
            row["attack"] += f" (timed out after {s['n']}/{len(examples)})"
        row["backend"] = run.get("backend")
        pair = f"riftkit-{PAIRS.get(name, '')}"
        mine = results.get(f"{pair}@auto", results.get(pair))  # the default path when it ran, else the PyTorch path
        if name.startswith("textattack") and results.get(pair) is not None and mine is not results.get(pair):
            row["riftkit_torch_speedup"] = round(run["wall_s"] / results[pair]["wall_s"], 2)  # riftkit on fp32 PyTorch
        if mine is not None:
            if s["n"] < len(examples):
                # a partial TextAttack run: compare speed per example, accuracy on the same examples
                done = set(run["outcomes"])
                same = [o for uid, o in mine["outcomes"].items() if uid in done]
                row["riftkit_robust_accuracy_on_same_examples"] = sum(o == "failed" for o in same) / len(same)
                row["riftkit_speedup"] = round((len(examples) / mine["wall_s"]) / (s["n"] / run["wall_s"]), 2)
                rows.append(row)
                continue
            row["riftkit_speedup"] = round(run["wall_s"] / mine["wall_s"], 2)
            row["riftkit_robust_accuracy_minus_this"] = round(mine["summary"]["robust_accuracy"] - s["robust_accuracy"], 4)
        rows.append(row)

    header = (f"{'attack':<32} {'n':>4} {'wall s':>8} {'ex/s':>8} {'vanilla':>8} {'robust':>7} {'success':>8} {'queries':>8} "
              f"{'to model':>9} {'per call':>9} {'model s':>8} {'riftkit x':>9}")
    print(f"\nvictim {args.victim}, SST-2 test sample n={len(examples)} seed={args.seed}, {args.threads} threads, {args.device}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['attack']:<32} {r['examples']:>4} {r['wall_s']:>8.1f} {r['examples_per_s']:>8.3f} {100 * r['vanilla_accuracy']:>7.1f}% "
              f"{100 * r['robust_accuracy']:>6.1f}% {100 * r['success_rate']:>7.1f}% {r['mean_queries']:>8.1f} "
              f"{r['model_texts'] or '':>9} {r['texts_per_call'] or '':>9} {r['model_s']:>8.1f} {r.get('riftkit_speedup', ''):>9}")
    out = {"victim": str(Path(args.victim).resolve()), "n": len(examples), "seed": args.seed, "threads": args.threads, "device": args.device,
           "batch_size": args.batch_size,
           "settings": {"substitutions": "counterfitted", "lm_constraint": "none", "genetic": {"population": 60, "generations": 40},
                        "textattack_constraints": ["RepeatModification"]},
           "rows": rows, "per_example_outcomes": {name: run["outcomes"] for name, run in results.items()},
           "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(out, indent=2) + "\n")
    print(f"-> {args.output}")


if __name__ == "__main__":
    main()
