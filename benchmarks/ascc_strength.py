"""How strong the white-box ASCC attack is: single argmax decode vs. the strong decode, against PWWS.

    RIFTKIT_DATA_DIR=../shared/data python benchmarks/ascc_strength.py \
        --models runs/cpu-sst2-standard-small/best runs/cpu-sst2-adv/best --one-word-model runs/demo/best [--sweep]

Issue 24's check (ASCC selects the models, so it must not be weaker than PWWS), on examples model selection
never saw:

    RIFTKIT_DATA_DIR=../shared/data python benchmarks/ascc_strength.py --one-word-model '' \
        --models runs/margin-sst2/runs/standard-seed0/best runs/margin-sst2/runs/adv_base-seed0/best \
        --out benchmarks/results/ascc_vs_pwws_disjoint.json

For every SST-2 model: a seeded 200 of the 500 dev phrases carved from train (``dataset: sst2, dev_size: 500``,
as configs/cpu/sst2_adv.yaml): by default (``--examples disjoint``) drawn from the 300 that model selection's
seeded 200 leaves out; ``--examples selection``: selection's own 200 (what this benchmark used before issue 24),
attacked by PWWS, ASCC with the paper's single decode, the strong decode on the same-length hull and on length
groups (attack.ascc.hull), and both searches alone (argmax texts only: no enumeration, no one-word moves), so that
the table shows how much of the strength is the relaxed search's. ASCC runs with the settings of model
selection (DevEvaluator: 10 steps, 32 examples per search, 32 texts per
forward), so its wall time is the cost of one dev evaluation's robust metric.
``--sweep`` first tabulates the strong decode over a grid of restarts,
candidates and enumeration limits (how the defaults were chosen; see :func:`sweep`).

The one-word case: eight one-word reviews on ``--one-word-model`` under PWWS,
Genetic (no LM), ASCC single and strong. Writes benchmarks/results/ascc_strength.json.
Wall times depend on what else runs on the machine: the JSON records the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from riftkit.evaluation.outcomes import outcome_rates
from riftkit.attacks.registry import AttackSetup, build_attack
from riftkit.config import ASCCSearchConfig, AttackConfig, DataConfig, from_dict
from riftkit.data import Example, load_splits
from riftkit.data.splits import sample
from riftkit.models import load_classifier
from riftkit.objectives.ascc import start_logits
from riftkit.substitutions import load_substitutions

ONE_WORD = [("bad", 0), ("awful", 0), ("great", 1), ("good", 1), ("boring", 0), ("wonderful", 1), ("terrible", 0), ("fine", 1)]
MAIN = {
    "pwws": {"attack": "pwws"},
    "ascc-single": {"attack": "ascc", "ascc": {"decode": "single"}},
    "ascc-strong": {"attack": "ascc", "ascc": {"hull": "same_length"}},
    # issue 24: the relaxed search over every token count (attack.ascc.hull: length_groups)
    "ascc-groups": {"attack": "ascc", "ascc": {"hull": "length_groups"}},
    # the relaxed searches alone (their argmax texts; no enumeration, no one-word moves): where the strength comes from
    "ascc-search-only": {"attack": "ascc", "ascc": {"hull": "same_length", "enumerate_max": 0, "candidates": 0}},
    "ascc-groups-search-only": {"attack": "ascc", "ascc": {"hull": "length_groups", "enumerate_max": 0, "candidates": 0}},
}
SWEEP_RESTARTS, SWEEP_CANDIDATES, SWEEP_ENUMERATE = (0, 1, 2, 4), (0, 8, 16, 32), (0, 64, 256)


def train_seconds_per_epoch(metrics: Path) -> float | None:
    """Mean training seconds per epoch of a run (each epoch's time since the previous event, dev evaluations excluded)."""
    if not metrics.is_file():
        return None
    records = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    spans, previous = [], 0.0
    for record in records:
        if record["event"] == "train_epoch":
            spans.append(record["time_s"] - previous)
        if "time_s" in record and record["event"] in ("train_epoch", "eval", "start"):
            previous = record["time_s"]
    return round(sum(spans) / len(spans), 1) if spans else None


def run(model, task, substitutions, examples, fields: dict) -> dict:
    config = from_dict(AttackConfig, {"lm": "none", **fields}, "attack")  # fields as in a YAML attack section
    attack = build_attack(AttackSetup(model, task, substitutions, config))
    start = time.perf_counter()
    results = attack.attack(examples)
    wall = time.perf_counter() - start
    attacked = [r for r in results if r.outcome != "skipped"]
    return {
        **outcome_rates([r.outcome for r in results]),
        "wall_time_s": round(wall, 2),
        "mean_queries": sum(r.queries for r in attacked) / len(attacked) if attacked else 0.0,
        "succeeded": sorted(r.uid for r in results if r.outcome == "succeeded"),
        "adversarial": {r.uid: " ".join(r.adversarial[r.segment]) for r in results if r.outcome == "succeeded"},
    }


def sweep(model, task, substitutions, examples, seed: int = 0) -> dict:
    """Robust accuracy of the strong decode for every (restarts R, candidates C, enumerate_max E) of the grid,
    from ONE run: each example's searches, random starts and texts do not depend on C, E or other examples,
    so the first max(R)+1 searches with the top max(C) candidates, and exact enumeration of neighbourhoods
    up to max(E) texts, give every smaller setting. Queries are estimated (cross-search duplicates counted)."""
    R, C, E = max(SWEEP_RESTARTS), max(SWEEP_CANDIDATES), max(SWEEP_ENUMERATE)
    config = AttackConfig(attack="ascc", lm="none", ascc=ASCCSearchConfig(restarts=R, candidates=C, enumerate_max=E))
    attack = build_attack(AttackSetup(model, task, substitutions, config))
    segment = task.attacked_segment
    clean = model.predict_proba([e.segments for e in examples]).argmax(-1).tolist()
    attacked = sorted((e for e, p in zip(examples, clean) if p == e.label), key=lambda e: len(e.segments[segment]))  # as the attack batches
    truth, size = {}, {}
    for e in attacked:
        texts = attack.neighbourhood(e)
        if texts is not None:
            size[e.uid], truth[e.uid] = len(texts), False
            if texts:
                probs = model.predict_proba([tuple(t if i == segment else s for i, s in enumerate(e.segments)) for t in texts], batch_size=config.batch_size)
                truth[e.uid] = bool((probs.argmax(-1) != e.label).any())
    # per example and search: (rank of the best flipping text: -1 argmax, j the j-th move of either family; or None,
    # hull moves, outside moves, whether a search ran); an example with no word in the hull gets one search-free round
    rounds: dict[str, list[tuple[int | None, int, int, bool]]] = {e.uid: [] for e in attacked}
    start = time.perf_counter()
    for at in range(0, len(attacked), config.in_flight):
        batch = attacked[at : at + config.in_flight]
        hull = attack.hulls.build(batch, model.encode_examples(batch), [segment])
        K = hull.candidate_mask.shape[-1]
        requests = [(e, attack.search_texts(hull, b, torch.zeros(0, K), e.segments[segment], model.visible_words(e.segments)[segment]), False)
                    for b, e in enumerate(batch) if not hull.words[b]]
        score(model, requests, rounds, segment, config.batch_size)
        batch = [e for b, e in enumerate(batch) if hull.words[b]]
        if not batch:
            continue
        inputs = model.encode_examples(batch)
        hull = attack.hulls.build(batch, inputs, [segment])
        labels = torch.tensor([e.label for e in batch])
        visible = [model.visible_words(e.segments)[segment] for e in batch]
        for round_ in range(R + 1):
            init = start_logits(hull, [e.uid for e in batch], seed, round_, model.spec.max_length)
            found = attack.adversary.search(model, inputs, hull, labels, init=init)
            requests = [(e, attack.search_texts(hull, b, found.weights[b], e.segments[segment], visible[b]), True) for b, e in enumerate(batch)]
            score(model, requests, rounds, segment, config.batch_size)
    grid = []
    for e_max in SWEEP_ENUMERATE:
        for restarts in SWEEP_RESTARTS:
            for candidates in SWEEP_CANDIDATES:
                failed, queries, search_misses, known = 0, 0, 0, 0
                for e in attacked:
                    if size.get(e.uid, e_max + 1) <= e_max:
                        failed += not truth[e.uid]
                        queries += 1 + size[e.uid]
                        continue
                    success, q = False, 1
                    for best, hull_moves, outside_moves, searched in rounds[e.uid][: restarts + 1]:
                        q += attack.adversary.steps * searched + 1 + min(candidates, hull_moves) + min(candidates, outside_moves)
                        if best is not None and best < candidates:
                            success = True
                            break
                    failed += not success
                    queries += q
                    if e.uid in truth:  # the search where enumeration knows the answer
                        known += 1
                        search_misses += truth[e.uid] and not success
                grid.append({"enumerate_max": e_max, "restarts": restarts, "candidates": candidates,
                             "robust_accuracy": failed / len(examples), "mean_queries_estimate": queries / len(attacked),
                             "search_misses_on_enumerable": search_misses, "searched_enumerable": known})
    return {"n": len(examples), "attacked": len(attacked), "enumerable_at": {str(k): sum(v <= k for v in size.values()) for k in SWEEP_ENUMERATE},
            "flippable_enumerable": sum(truth.values()), "wall_time_s": round(time.perf_counter() - start, 1), "grid": grid}


def score(model, requests, rounds: dict, segment: int, batch_size: int) -> None:
    """Score every text of each example's :class:`SearchTexts`; append the example's round to ``rounds``."""
    flat = []
    for e, texts, _ in requests:
        flat += [tuple(t if i == segment else s for i, s in enumerate(e.segments)) for t in texts.all()]
    predictions = model.predict_proba(flat, batch_size=batch_size).argmax(-1).tolist() if flat else []
    for e, texts, searched in requests:
        n = 1 + len(texts.hull_moves) + len(texts.outside_moves)
        flips, predictions = [p != e.label for p in predictions[:n]], predictions[n:]
        ranks = [-1] + list(range(len(texts.hull_moves))) + list(range(len(texts.outside_moves)))
        best = min((r for r, f in zip(ranks, flips) if f), default=None)
        rounds[e.uid].append((best, len(texts.hull_moves), len(texts.outside_moves), searched))


def print_sweep(result: dict) -> None:
    print(f"sweep: {result['attacked']} attacked of {result['n']}; enumerable: {result['enumerable_at']}")
    for e_max in SWEEP_ENUMERATE:
        print(f"  enumerate_max={e_max}: robust accuracy (mean queries, estimated); rows restarts, columns candidates {SWEEP_CANDIDATES}")
        for restarts in SWEEP_RESTARTS:
            cells = [g for g in result["grid"] if g["enumerate_max"] == e_max and g["restarts"] == restarts]
            print(f"    R={restarts}: " + "  ".join(f"{g['robust_accuracy']:.3f} ({g['mean_queries_estimate']:5.1f})" for g in cells)
                  + (f"   search misses on enumerable: {[g['search_misses_on_enumerable'] for g in cells]}" if e_max == 0 else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=os.environ.get("RIFTKIT_DATA_DIR", "../shared/data"))
    parser.add_argument("--models", nargs="*", default=["runs/cpu-sst2-standard-small/best", "runs/cpu-sst2-adv/best"])
    parser.add_argument("--one-word-model", default="runs/demo/best", help="'' to skip the one-word case")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--examples", choices=["disjoint", "selection"], default="disjoint",
                        help="disjoint (default): a seeded --n of the dev phrases that model selection does NOT attack (the 300 "
                             "outside its seeded 200); selection: selection's own 200 (as this benchmark did before issue 24)")
    parser.add_argument("--selection-size", type=int, default=200, help="train.select_max_examples of the models' runs")
    parser.add_argument("--selection-seed", type=int, default=0, help="train.seed of the models' runs (seeds the selection subset)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sweep", action="store_true", help="also the strong decode with other restarts / candidates")
    parser.add_argument("--attacks", nargs="*", default=list(MAIN), choices=list(MAIN), help="which of the main attacks to run (results merge into --out)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/ascc_strength.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    substitutions = load_substitutions("counterfitted", args.data_dir)
    out = Path(args.out)
    report = json.loads(out.read_text()) if out.is_file() else {}
    report.setdefault("models", {})

    if args.models:
        splits = load_splits(DataConfig(dataset="sst2", dev_size=500), args.data_dir)
        if args.examples == "selection":
            examples = sample(splits.dev, args.n, args.seed)
        else:
            selected = {e.uid for e in sample(splits.dev, args.selection_size, args.selection_seed)}
            examples = sample([e for e in splits.dev if e.uid not in selected], args.n, args.seed)
        report["examples"] = {"split": "dev", "which": args.examples, "n": len(examples), "seed": args.seed,
                              "selection_size": args.selection_size, "selection_seed": args.selection_seed}
        for path in args.models:
            model = load_classifier(path)
            rows = report["models"].setdefault(path, {})
            rows["train_s_per_epoch"] = train_seconds_per_epoch(Path(path).parent / "metrics.jsonl")
            if args.sweep:
                rows["sweep"] = sweep(model, splits.task, substitutions, examples, args.seed)
                print_sweep(rows["sweep"])
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(report, indent=2) + "\n")
            for name, fields in ((n, f) for n, f in MAIN.items() if n in args.attacks):
                load = os.getloadavg()[0]
                rows[name] = {**run(model, splits.task, substitutions, examples, fields), "fields": fields, "load_average_1min": round(load, 2)}
                r = rows[name]
                print(f"{path:<36} {name:<20} vanilla {r['vanilla_accuracy']:.3f}  robust {r['robust_accuracy']:.3f}  "
                      f"queries {r['mean_queries']:7.1f}  wall {r['wall_time_s']:7.1f} s", flush=True)
            if all(k in rows for k in ("ascc-strong", "ascc-single", "pwws")):
                strong, single, pwws = (set(rows[k]["succeeded"]) for k in ("ascc-strong", "ascc-single", "pwws"))
                rows["overlap"] = {"single_not_strong": len(single - strong), "strong_not_single": len(strong - single),
                                   "pwws_not_strong": len(pwws - strong), "strong_not_pwws": len(strong - pwws)}
            if all(k in rows for k in ("ascc-groups", "pwws")):
                groups, pwws = set(rows["ascc-groups"]["succeeded"]), set(rows["pwws"]["succeeded"])
                rows["overlap_groups"] = {"pwws_not_groups": len(pwws - groups), "groups_not_pwws": len(groups - pwws)}
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(report, indent=2) + "\n")

    if args.one_word_model:
        model = load_classifier(args.one_word_model)
        examples = [Example(((word,),), label, f"oneword-{word}") for word, label in ONE_WORD]
        task = model.spec.task_spec
        variants = {**MAIN, "genetic": {"attack": "genetic"}}
        rows = {name: {**run(model, task, substitutions, examples, fields), "fields": fields} for name, fields in variants.items()}
        report["one_word"] = {"model": args.one_word_model, "reviews": ONE_WORD, "attacks": rows}
        for name, r in rows.items():
            print(f"one-word {name:<12} flips {len(r['succeeded'])}/{len(examples)} (vanilla {r['vanilla_accuracy']:.3f}): "
                  + ", ".join(f"{uid.split('-', 1)[1]}->{text}" for uid, text in r["adversarial"].items()), flush=True)

    print(f"\nSST-2 dev, {report.get('examples', {}).get('n', args.n)} examples ({report.get('examples', {}).get('which', 'selection')}):"
          " robust accuracy (wall time, s); training seconds per epoch of the model's run")
    names = [n for n in MAIN if any(n in rows for rows in report["models"].values())]
    print(f"{'model':<36} " + " ".join(f"{n:>20}" for n in names))
    for path, rows in report["models"].items():
        print(f"{path:<36} " + " ".join(f"{rows[n]['robust_accuracy']:>11.3f} ({rows[n]['wall_time_s']:5.0f})" if n in rows else f"{'':>20}" for n in names)
              + f"   train {rows.get('train_s_per_epoch') or float('nan'):.0f} s/epoch")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
