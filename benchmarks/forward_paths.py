"""Forward paths for an attack's queries: throughput and agreement with the fp32 path riftkit loads today.

An attack spends nearly all its time in the victim's forward pass, so the ceiling
is the forward pass itself. For a fine-tuned model, on real texts, each path is
timed on the attack's query shape (``Classifier.predict_proba``: length-sorted
batches, softmax) and compared with the baseline ("eager": the model as
``load_classifier`` returns it, fp32, the attention implementation transformers
picks) on the same texts: share of identical argmax predictions and the largest
absolute difference in class probability.

    RIFTKIT_DATA_DIR=../shared/data .venv/bin/python benchmarks/forward_paths.py \\
        --model runs/study-sst2/runs/standard-seed0/best --imdb-model runs/cpu-imdb128-standard/best

Paths: ``eager`` (baseline), ``attn-eager`` / ``attn-sdpa`` (transformers' attention
implementations), ``compile`` (torch.compile of the encoder), ``bf16`` (autocast),
``int8-dynamic`` (torch.ao dynamic quantisation of the Linear layers), ``onnxruntime``
(torch.onnx export, CPU execution provider, fp32). Rows: ``path``, ``data``, ``batch``,
``texts_per_s``, ``speedup`` (over eager, same data and batch, same process),
``argmax_agreement``, ``max_abs_prob_diff``. Writes benchmarks/results/forward_paths.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from riftkit.data import load_splits
from riftkit.data.roles import DataRecord
from riftkit.data.splits import sample
from riftkit.models import load_classifier

HERE = Path(__file__).resolve().parent
Predict = Callable[[Sequence], torch.Tensor]


def batched(model, forward: Callable, segments: Sequence, batch_size: int) -> torch.Tensor:
    """predict_proba's shape of work (length-sorted batches, softmax), with ``forward(batch) -> logits``."""
    order = sorted(range(len(segments)), key=lambda i: sum(len(s) for s in segments[i]))
    probs = torch.empty(len(segments), len(model.spec.label_names))
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            batch = model.encode([segments[i] for i in chunk])
            probs[chunk] = torch.softmax(forward(batch).float(), dim=-1)
    return probs


def paths(model_path: str, max_length: int) -> dict[str, Callable[[], Callable]]:
    """name -> a builder returning ``forward(batch) -> logits`` (built lazily: some paths are slow to build)."""

    def eager():
        model = load_classifier(model_path).eval()
        return model, lambda batch: model(**batch)

    def attention(kind: str):
        def build():
            model = load_classifier(model_path).eval()
            model.encoder.set_attn_implementation(kind)
            return model, lambda batch: model(**batch)
        return build

    def compiled():
        model = load_classifier(model_path).eval()
        model.encoder = torch.compile(model.encoder, dynamic=True)
        return model, lambda batch: model(**batch)

    def bf16():
        model = load_classifier(model_path).eval()

        def forward(batch):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return model(**batch)
        return model, forward

    def int8():
        model = load_classifier(model_path).eval()
        quantized = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8)
        return model, lambda batch: quantized(**batch)

    def onnx():
        from riftkit.models.backends import OnnxRuntimeVictim  # the attacks' own ONNX path (attack.backend)

        model = load_classifier(model_path).eval()
        victim = OnnxRuntimeVictim(model)
        return model, victim.logits

    return {"eager": eager, "attn-eager": attention("eager"), "attn-sdpa": attention("sdpa"), "compile": compiled, "bf16": bf16,
            "int8-dynamic": int8, "onnxruntime": onnx}


def measure(model_path: str, texts: Sequence, batches: list[int], names: list[str], data: str, repeats: int) -> list[dict]:
    rows, baseline = [], {}
    for name, build in paths(model_path, 0).items():
        if names and name not in names:
            continue
        try:
            model, forward = build()
            batched(model, forward, texts[:64], batches[0])  # warm-up (compilation, first-call allocations)
        except Exception as err:  # a path that does not build here is reported, not fatal
            rows.append({"path": name, "data": data, "error": f"{type(err).__name__}: {str(err)[:200]}"})
            print(f"{name:<14} {data:<6} unavailable: {rows[-1]['error']}", flush=True)
            continue
        for batch in batches:
            best = float("inf")
            for _ in range(repeats):  # the fastest of a few runs: the machine's noise only ever slows a run down
                start = time.perf_counter()
                probs = batched(model, forward, texts, batch)
                best = min(best, time.perf_counter() - start)
            if name == "eager":
                baseline[batch] = (probs, best)
            ref, ref_time = baseline[batch]
            row = {"path": name, "data": data, "batch": batch, "texts": len(texts), "texts_per_s": round(len(texts) / best, 1),
                   "speedup": round(ref_time / best, 3), "argmax_agreement": float((probs.argmax(-1) == ref.argmax(-1)).float().mean()),
                   "max_abs_prob_diff": float((probs - ref).abs().max())}
            rows.append(row)
            print(f"{name:<14} {data:<6} batch {batch:>3}: {row['texts_per_s']:>7.1f} texts/s  x{row['speedup']:.2f}  "
                  f"argmax {row['argmax_agreement']:.4f}  max |dp| {row['max_abs_prob_diff']:.2e}", flush=True)
    return rows


def texts_of(model_path: str, n: int, data_dir: str | None) -> list:
    record = DataRecord.load(model_path)
    if record is not None:
        data = record.data_config()
    else:  # a model saved before models recorded their data: its task's data set, capped
        from riftkit.config import DataConfig

        data = DataConfig(dataset=load_classifier(model_path).spec.task, max_train=n, max_test=n)
    splits = load_splits(data, data_dir)
    pool = list(splits.test) + list(splits.dev) + list(splits.train)
    return [e.segments for e in sample(pool, n, seed=0)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="an SST-2 model (its recorded data gives the texts)")
    parser.add_argument("--imdb-model", help="an IMDB model at 128 tokens (optional second data set)")
    parser.add_argument("--n", type=int, default=2000, help="real texts per data set (agreement is measured on all of them)")
    parser.add_argument("--batches", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--paths", nargs="*", default=[], help="only these paths (default: all)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-dir")
    parser.add_argument("--out", default=str(HERE / "results" / "forward_paths.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for model_path, data in ((args.model, "sst2"), (args.imdb_model, "imdb")):
        if model_path:
            rows += measure(model_path, texts_of(model_path, args.n, args.data_dir), args.batches, args.paths, data, args.repeats)
            Path(args.out).write_text(json.dumps({"rows": rows, "threads": args.threads, "load_average": os.getloadavg(),
                                                  "torch": torch.__version__}, indent=2) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
