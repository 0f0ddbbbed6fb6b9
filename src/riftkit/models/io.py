"""Save and load classifiers: a readable folder, safetensors weights, no pickle.

Layout of a saved model folder::

    riftkit.json          ClassifierSpec: task, labels, max length, pooling, pre-tokeniser, ...
    head.safetensors      the task head
    encoder/              a Hugging Face model folder (config.json, model.safetensors, tokenizer)

The ``encoder/`` folder is an ordinary ``from_pretrained`` folder, so the
fine-tuned encoder is usable by any Hugging Face tool as well.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file, save_file

from .. import __version__
from ..files import check_safetensors
from .classifier import Classifier, ClassifierSpec
from .encoder import load_encoder, load_tokenizer, quiet_transformers

SPEC_FILE = "riftkit.json"
HEAD_FILE = "head.safetensors"
ENCODER_DIR = "encoder"
FORMAT_VERSION = 1


def save_classifier(model: Classifier, folder: str | Path, extra: dict | None = None) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with quiet_transformers():
        model.encoder.save_pretrained(folder / ENCODER_DIR, state_dict=plain_state_dict(model.encoder))
        model.tokenizer.save_pretrained(folder / ENCODER_DIR)
    save_file({k: v.detach().contiguous().cpu() for k, v in model.head.state_dict().items()}, folder / HEAD_FILE)
    meta = {"format_version": FORMAT_VERSION, "riftkit_version": __version__, "spec": model.spec.to_dict()}
    if extra:
        meta["extra"] = extra
    (folder / SPEC_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return folder


def weights_digest(folder: str | Path) -> str:
    """SHA-256 (hex) over the weight files of a saved model folder, in a fixed order.

    Attack folders record it, so that resuming into a folder whose model was
    retrained (same path, other weights) is refused.
    """
    import hashlib

    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in (".safetensors", ".bin"))
    if not files:
        raise FileNotFoundError(f"{folder}: no .safetensors (or .bin) weight files")
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()


def plain_state_dict(module) -> dict:
    """The state dict under the usual parameter names, without parametrizations.

    A parametrized weight (Mixout) is stored by PyTorch as ``...parametrizations.weight.original``;
    the saved model holds the learned weight, which is what Mixout uses at evaluation.
    """
    state = {}
    for key, value in module.state_dict().items():
        if ".parametrizations." not in key:
            state[key] = value
        elif key.endswith(".original"):
            head, _, rest = key.partition(".parametrizations.")
            state[f"{head}.{rest.split('.')[0]}"] = value
    return state


def load_classifier(folder: str | Path, device: str = "cpu") -> Classifier:
    """Rebuild a classifier saved by :func:`save_classifier`, in eval mode.

    Raises FileNotFoundError (not a model folder), ValueError (a bad description), DamagedFileError (a truncated weight file).
    """
    folder = Path(folder)
    spec_path = folder / SPEC_FILE
    if not spec_path.is_file():
        raise FileNotFoundError(f"{folder} is not a riftkit model folder: {SPEC_FILE} is missing")
    try:
        meta = json.loads(spec_path.read_text(encoding="utf-8"))
        spec = ClassifierSpec(**meta["spec"])
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"{spec_path}: not a valid riftkit model description: {err}") from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{spec_path}: format_version {meta.get('format_version')} is not supported (expected {FORMAT_VERSION})")
    for weights in sorted(folder.rglob("*.safetensors")):  # a truncated file is named here, not deep in a loader
        check_safetensors(weights)
    encoder = load_encoder(str(folder / ENCODER_DIR))
    tokenizer = load_tokenizer(str(folder / ENCODER_DIR))
    model = Classifier(encoder, tokenizer, spec)
    model.head.load_state_dict(load_file(folder / HEAD_FILE))
    return model.to(device).eval()


def model_kind(source: str | Path) -> str:
    """``riftkit`` (a folder saved by riftkit), ``exported`` (by ``riftkit export``), ``transformers`` (a Hugging Face
    classifier folder, or a name that is not a local path: the Hub). Raises FileNotFoundError for a folder of
    neither kind and for a path that does not exist."""
    path = Path(source)
    if path.is_dir():
        if (path / SPEC_FILE).is_file():
            return "riftkit"
        if (path / "config.json").is_file():
            from .export import is_exported

            return "exported" if is_exported(path) else "transformers"
        raise FileNotFoundError(f"{path} is neither a riftkit model folder ({SPEC_FILE}) nor a Hugging Face model folder "
                                "(config.json)")
    text = str(source)
    if path.exists() or text.startswith((".", "/", "~")) or text.count("/") > 1 or "\\" in text:
        raise FileNotFoundError(f"{source}: no such model folder")
    return "transformers"  # a Hub name such as textattack/bert-base-uncased-SST-2


def load_model(source: str | Path, task=None, label_map: dict | None = None, device: str = "cpu"):
    """Any classifier riftkit can attack, evaluate or predict with, in eval mode: a riftkit folder, an exported
    folder, a Hugging Face classifier folder or a Hub name (:func:`model_kind`).

    ``task`` (the data's TaskSpec) and ``label_map`` (``data.label_map``) align a Hugging Face classifier's labels
    with the data's (models/hf_classifier.py); a riftkit model carries its own. Raises as :func:`load_classifier`
    and :func:`riftkit.models.hf_classifier.load_hf_classifier`.
    """
    kind = model_kind(source)
    if kind == "riftkit":
        return load_classifier(source, device)
    if kind == "exported":
        from .export import load_exported

        return load_exported(source, device)
    from .hf_classifier import load_hf_classifier

    return load_hf_classifier(str(source), task, label_map, device=device)

