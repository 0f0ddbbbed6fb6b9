"""Hugging Face models in and out (issue 26): a Trainer-made classifier attacked by riftkit, and an export read by pipeline.

    RIFTKIT_DATA_DIR=../shared/data python benchmarks/hf_models.py --export-model runs/margin-sst2/runs/adv_base-seed0/best

1. **A classifier riftkit did not train.** The embedded MiniLM fine-tuned as a ``BertForSequenceClassification`` with
   the ``transformers`` Trainer (``--train-phrases`` seeded SST-2 phrases, one epoch, lr 5e-5, batch 32) and saved with
   ``save_pretrained``; then, on ``--n`` seeded SST-2 test sentences (GLUE dev), its accuracy through riftkit
   (``riftkit.evaluate``) against its own ``pipeline`` on the raw sentences, and PWWS, Genetic and ASCC through
   ``riftkit.attack`` on ``--attack-n`` of them. A tiny random ``RobertaForSequenceClassification`` (byte-level BPE)
   is attacked the same way, for the mechanics (its accuracy means nothing).
2. **An export.** ``riftkit export`` of ``--export-model``; ``pipeline("text-classification", model=OUT,
   trust_remote_code=True)`` called as the model card shows, against riftkit's probabilities on raw IMDB (with
   ``<br />``), SST-2 and Unicode / HTML edge cases; the largest |dp|.

Prints a table and writes benchmarks/results/hf_models.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def trainer_classifier(folder: Path, phrases: int, seed: int) -> Path:
    """The embedded MiniLM fine-tuned on SST-2 by transformers' Trainer, saved as a plain HF classifier folder."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments

    from riftkit.config import DataConfig
    from riftkit.data import load_splits
    from riftkit.models import embedded_model_path

    source = embedded_model_path()
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=2, id2label={0: "negative", 1: "positive"},
                                                               label2id={"negative": 0, "positive": 1})
    splits = load_splits(DataConfig(dataset="sst2", max_train=phrases, dev_size=500, seed=seed))
    texts = [e.text(0) for e in splits.train]
    encodings = tokenizer(texts, truncation=True, max_length=64)

    class Phrases(torch.utils.data.Dataset):
        def __len__(self):
            return len(texts)

        def __getitem__(self, i):
            return {**{k: v[i] for k, v in encodings.items()}, "labels": splits.train[i].label}

    args = TrainingArguments(output_dir=str(folder / "trainer"), per_device_train_batch_size=32, num_train_epochs=1, learning_rate=5e-5,
                             seed=seed, report_to=[], save_strategy="no", logging_steps=50, use_cpu=True)
    from transformers import DataCollatorWithPadding

    Trainer(model=model, args=args, train_dataset=Phrases(), data_collator=DataCollatorWithPadding(tokenizer)).train()
    out = folder / "minilm-sst2-trainer"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def raw(name: str, n: int, data_dir: Path) -> list:
    rows = []
    with gzip.open(data_dir / name, "rt", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            rows.append(row)
            if len(rows) == n:
                break
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-phrases", type=int, default=4000)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--attack-n", type=int, default=50)
    parser.add_argument("--export-model", help="a riftkit model folder to export (skipped when absent)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "hf_models.json"))
    args = parser.parse_args()
    import riftkit
    from riftkit.data import sample, words
    from riftkit.models import load_tokenizer
    from transformers import pipeline

    data_dir = Path(os.environ.get("RIFTKIT_DATA_DIR", REPO.parent / "shared" / "data"))
    work = Path(tempfile.mkdtemp(prefix="riftkit-hf-"))
    results: dict = {"seed": args.seed, "train_phrases": args.train_phrases, "n": args.n, "attack_n": args.attack_n}

    start = time.perf_counter()
    bert = trainer_classifier(work, args.train_phrases, args.seed)
    results["trainer_seconds"] = round(time.perf_counter() - start, 1)
    from tests.hf_models import save_tiny_roberta

    roberta = save_tiny_roberta(work / "tiny-roberta")
    model = riftkit.load(bert, dataset="sst2")
    ours = riftkit.evaluate(model, dataset="sst2", split="test", n=args.n, seed=args.seed)
    from riftkit.api import model_and_data

    splits_test = model_and_data(str(bert), "sst2", {}, None)[2].test
    chosen = {e.uid for e in sample(splits_test, args.n, args.seed)}
    by_uid = {e.uid: e for e in splits_test}
    rows = raw("sst2/dev.jsonl.gz", 10_000, data_dir)
    # uids of the registered SST-2 test are "<file>:<line>" (1-based); the raw line is read from the same file
    texts, labels = [], []
    for uid in sorted(chosen, key=lambda u: int(u.rsplit(":", 1)[1])):
        row = rows[int(uid.rsplit(":", 1)[1]) - 1]
        assert words(row["text"]) == list(by_uid[uid].segments[0]), uid
        texts.append(row["text"])
        labels.append(row["label"])
    classify = pipeline("text-classification", model=str(bert), truncation=True, top_k=None)
    predictions = [max(r, key=lambda d: d["score"])["label"] for r in classify(texts)]
    theirs = sum(int(p == ("negative", "positive")[y]) for p, y in zip(predictions, labels)) / len(labels)
    results["trainer_bert"] = {"riftkit_accuracy": ours["accuracy"], "pipeline_accuracy": theirs, "n": ours["n"],
                               "data_role": ours["data_role"]["label"]}
    attacks = {}
    for name, folder in (("trainer_bert", bert), ("tiny_roberta", roberta)):
        for attack, extra in (("pwws", {}), ("genetic", {"lm": "none", "genetic": {"population": 20, "generations": 10}}), ("ascc", {})):
            start = time.perf_counter()
            summary = riftkit.attack(str(folder), attack, dataset="sst2", split="test", n=args.attack_n, seed=args.seed,
                                     output_dir=work / f"attack-{name}-{attack}", progress=False, **extra)
            attacks[f"{name}/{attack}"] = {k: summary[k] for k in ("n", "vanilla_accuracy", "robust_accuracy", "success_rate", "mean_queries")}
            attacks[f"{name}/{attack}"]["seconds"] = round(time.perf_counter() - start, 1)
    results["attacks"] = attacks

    if args.export_model:
        out = work / "exported"
        start = time.perf_counter()
        riftkit.export(args.export_model, out)
        results["export_seconds"] = round(time.perf_counter() - start, 1)
        from tests.test_export import EDGE_CASES

        inputs = [r["text"] for r in raw("imdb/test.jsonl.gz", 200, data_dir)] + [r["text"] for r in raw("sst2/dev.jsonl.gz", 300, data_dir)] + EDGE_CASES
        exported = pipeline("text-classification", model=str(out), trust_remote_code=True)
        piped = exported(inputs, truncation=True, top_k=None)
        native = riftkit.load(args.export_model)
        probs = native.predict_proba([(tuple(words(t)),) for t in inputs])
        table = torch.tensor([[{d["label"]: d["score"] for d in row}[label] for label in native.spec.label_names] for row in piped])
        results["export"] = {"model": args.export_model, "texts": len(inputs), "with_br": sum("<br" in t for t in inputs),
                             "max_abs_prob_diff": float((table - probs).abs().max()), "argmax_agreement": float((table.argmax(-1) == probs.argmax(-1)).float().mean())}
        results["model_card_head"] = (out / "README.md").read_text(encoding="utf-8")[:4000]

    print(f"\nTrainer-made MiniLM on {args.n} SST-2 test sentences: riftkit {results['trainer_bert']['riftkit_accuracy']:.4f}, "
          f"its own pipeline {results['trainer_bert']['pipeline_accuracy']:.4f}")
    print(f"\n| model / attack | n | clean | robust | success rate | mean queries | s |\n|---|---|---|---|---|---|---|")
    for key, row in attacks.items():
        print(f"| {key} | {row['n']} | {row['vanilla_accuracy']:.3f} | {row['robust_accuracy']:.3f} | {row['success_rate']:.3f} | "
              f"{row['mean_queries']:.1f} | {row['seconds']} |")
    if "export" in results:
        e = results["export"]
        print(f"\nexport of {e['model']}: {e['texts']} raw texts ({e['with_br']} with <br />), max |p_pipeline - p_riftkit| "
              f"{e['max_abs_prob_diff']:.2e}, argmax agreement {e['argmax_agreement']:.4f} (export took {results['export_seconds']} s)")
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
