"""``riftkit export``: a riftkit model as a folder that ``transformers.pipeline`` loads, with a model card.

Layout of an exported folder::

    config.json             RiftkitConfig: the encoder's own config, pooling, head size, labels, riftkit's spec
    model.safetensors       encoder.* and head.* weights
    modeling_riftkit.py     the model class transformers runs (trust_remote_code=True; models/hub_code/)
    tokenizer.json, ...     the encoder's tokenizer, with riftkit's pre-tokenisation in front of its own
    README.md               the model card (huggingface_hub's ModelCard)

riftkit's head (Linear-256-ReLU-Linear on the pooled feature) is no standard transformers class, hence the
shipped code. The pre-tokenisation of :func:`riftkit.data.words` is expressed in the tokenizer itself, not in
code: normalisers ``<br />`` -> space, NFKC, lowercase (before the encoder's own normaliser), and a pre-tokeniser
that keeps what the word pattern matches (before the encoder's own). The word pattern is spelled with explicit
character ranges computed from Python's own ``str.isalnum`` and ``str.isspace``, so the Rust regex engine splits
exactly where Python's ``re`` does. riftkit reads an exported folder back (:func:`load_exported`) without running
its code: config.json is data, and the weights are safetensors.
"""

from __future__ import annotations

import json
import shutil
from functools import lru_cache
from pathlib import Path

from safetensors.torch import load_file, save_file

from .. import __version__
from ..config import ConfigError
from ..data.roles import RECORD_FILE, UIDS_FILE
from ..files import check_safetensors
from .classifier import Classifier, ClassifierSpec
from .encoder import SAFE_LOADING, load_tokenizer, quiet_transformers
from .io import FORMAT_VERSION, SPEC_FILE, load_classifier, plain_state_dict

MODEL_TYPE = "riftkit"
CODE_FILE = "modeling_riftkit.py"
AUTO_MAP = {"AutoConfig": "modeling_riftkit.RiftkitConfig",
            "AutoModelForSequenceClassification": "modeling_riftkit.RiftkitForSequenceClassification"}
BR_PATTERN = r"(?i)<br\s*/?>"
# Python's str.lower() writes a capital sigma that ends a word as the final form; the Rust lowercase maps each
# character alone. This normaliser step (before lowercasing) gives the final form where Python does.
FINAL_SIGMA = (r"(?<=[\p{Lu}\p{Ll}\p{Lt}])\x{03A3}(?![\p{Lu}\p{Ll}\p{Lt}])", "\u03c2")


class ExportError(RuntimeError):
    pass


def is_exported(folder: Path) -> bool:
    """Whether ``folder``'s config.json says it was written by ``riftkit export``."""
    try:
        return json.loads((Path(folder) / "config.json").read_text(encoding="utf-8")).get("model_type") == MODEL_TYPE
    except (OSError, json.JSONDecodeError, AttributeError):
        return False


# -- riftkit's pre-tokenisation as tokenizers components ----------------------------------------------


def _ranges(predicate) -> str:
    """A regex character-class body for every code point that ``predicate`` accepts (\\x{...} ranges)."""
    parts, start = [], None
    for code in range(0x110001):
        accepted = code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF and predicate(chr(code))
        if accepted and start is None:
            start = code
        elif not accepted and start is not None:
            end = code - 1
            parts.append(f"\\x{{{start:X}}}" if start == end else f"\\x{{{start:X}}}-\\x{{{end:X}}}")
            start = None
    return "".join(parts)


@lru_cache(maxsize=1)
def word_pattern() -> str:
    """riftkit's word pattern (data/pretokenize.py ``_WORD``) with Python's \\w and \\s spelled out as ranges."""
    alnum, space = _ranges(str.isalnum), _ranges(str.isspace)
    word = f"[{alnum}]"
    return f"{word}+(?:'{word}+)*|[^{alnum}{space}_]|_"


def vanishing_characters(normalizer) -> str:
    """A character-class body of the marks and control characters that ``normalizer`` deletes outright ("" when none).

    riftkit makes each such character a word of its own, which the encoder's normaliser then empties: a word
    boundary. On whole raw text the same normaliser would delete it and join its neighbours ("नद" for न + virama
    + द), so the export turns it into a space first.
    """
    import unicodedata

    def vanishes(char: str) -> bool:
        return unicodedata.category(char)[0] in "MC" and not char.isspace() and normalizer.normalize_str(char) == ""

    return _ranges(vanishes)


def riftkit_tokenizer(tokenizer):
    """A copy of the fast ``tokenizer`` whose raw-text input goes through riftkit's pre-tokenisation first."""
    from tokenizers import Regex, Tokenizer
    from tokenizers import normalizers as norm
    from tokenizers import pre_tokenizers as pre

    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    steps = [norm.Replace(Regex(BR_PATTERN), " "), norm.NFKC(), norm.Replace(Regex(FINAL_SIGMA[0]), FINAL_SIGMA[1]), norm.Lowercase()]
    if backend.normalizer is not None:
        vanishing = vanishing_characters(backend.normalizer)
        if vanishing:
            steps.append(norm.Replace(Regex(f"[{vanishing}]"), " "))
    backend.normalizer = norm.Sequence(steps + ([backend.normalizer] if backend.normalizer is not None else []))
    split = pre.Split(Regex(word_pattern()), behavior="removed", invert=True)  # keep the matches, drop the rest (re.findall)
    backend.pre_tokenizer = pre.Sequence([split] + ([backend.pre_tokenizer] if backend.pre_tokenizer is not None else []))
    return backend


# -- export ------------------------------------------------------------------------------------


def export_model(model_folder: str | Path, out: str | Path, attack_summaries: list[Path] | None = None, repo: str | None = None) -> Path:
    """Write ``out`` from the riftkit model folder ``model_folder``; returns ``out``.

    ``attack_summaries``: attack summary.json files to report in the card (default: those beside the model
    whose ``model`` is this folder). ``repo``: the Hub name the card's usage example loads. Raises ConfigError when ``out`` exists and is not empty, or
    ``model_folder`` is not a riftkit model folder; ExportError when the tokenizer is not a fast one.
    """
    from transformers import PreTrainedTokenizerFast

    model_folder, out = Path(model_folder), Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"{out} exists and is not empty: export writes a new folder (remove it or choose another)")
    model = load_classifier(model_folder)
    if not getattr(model.tokenizer, "is_fast", False):
        raise ExportError(f"{model_folder}: the tokenizer is not a fast one; riftkit's pre-tokenisation cannot be put inside it")
    out.mkdir(parents=True, exist_ok=True)
    spec = model.spec
    encoder_config = model.encoder.config.to_dict()
    for key in ("architectures", "auto_map", "_name_or_path", "transformers_version", "torch_dtype", "dtype"):
        encoder_config.pop(key, None)
    meta = json.loads((model_folder / SPEC_FILE).read_text(encoding="utf-8"))
    config = {
        "model_type": MODEL_TYPE, "architectures": ["RiftkitForSequenceClassification"], "auto_map": AUTO_MAP,
        "encoder": encoder_config, "pooling": spec.pooling, "head_hidden": spec.head_hidden,
        "id2label": {str(i): name for i, name in enumerate(spec.label_names)},
        "label2id": {name: i for i, name in enumerate(spec.label_names)},
        "riftkit": {"format_version": FORMAT_VERSION, "riftkit_version": __version__, "spec": spec.to_dict(),
                    "extra": meta.get("extra", {})},
    }
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    weights = {f"encoder.{k}": v for k, v in plain_state_dict(model.encoder).items()}
    weights.update({f"head.{k}": v for k, v in model.head.state_dict().items()})
    save_file({k: v.detach().contiguous().cpu() for k, v in weights.items()}, out / "model.safetensors", metadata={"format": "pt"})
    shutil.copyfile(Path(__file__).parent / "hub_code" / CODE_FILE, out / CODE_FILE)

    specials = {name: getattr(model.tokenizer, name) for name in ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token",
                                                                  "cls_token", "mask_token") if getattr(model.tokenizer, name, None)}
    with quiet_transformers():
        exported = PreTrainedTokenizerFast(tokenizer_object=riftkit_tokenizer(model.tokenizer), model_max_length=spec.max_length,
                                           padding_side=model.tokenizer.padding_side,
                                           model_input_names=list(model.tokenizer.model_input_names), **specials)  # token_type_ids for BERT pairs
        exported.save_pretrained(out)
    for name in (RECORD_FILE, UIDS_FILE):  # the data record: attacks on the export know its roles
        if (model_folder / name).is_file():
            shutil.copyfile(model_folder / name, out / name)
    from .card import model_card

    model_card(model_folder, spec, config["riftkit"]["extra"], attack_summaries, repo=repo).save(out / "README.md")
    return out


def push_to_hub(out: str | Path, repo: str, private: bool = False) -> str:
    """Upload the exported folder ``out`` to the Hub repository ``repo``; returns its URL.

    The local folder is kept whatever happens. Raises ExportError naming the folder when the upload fails.
    """
    from huggingface_hub import HfApi

    api = HfApi()
    try:
        api.create_repo(repo, private=private, exist_ok=True, repo_type="model")
        api.upload_folder(repo_id=repo, folder_path=str(out), repo_type="model", commit_message="riftkit export")
    except Exception as err:  # network, authentication, permissions: all leave the local folder as it is
        raise ExportError(f"push to {repo} failed ({type(err).__name__}: {str(err)[:300]}); the exported folder is kept at {out}; "
                          f"retry with: huggingface-cli upload {repo} {out}") from None
    return f"https://huggingface.co/{repo}"


# -- reading an exported folder back, without its code ----------------------------------------------


def load_exported(folder: str | Path, device: str = "cpu") -> Classifier:
    """The riftkit Classifier of an exported folder, in eval mode, built from config.json and model.safetensors alone.

    Raises ValueError naming config.json when it is not riftkit's, DamagedFileError for a truncated weight file.
    """
    from transformers import AutoConfig, AutoModel

    folder = Path(folder)
    path = folder / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
        spec = ClassifierSpec(**config["riftkit"]["spec"])
        settings = dict(config["encoder"])
        model_type = settings.pop("model_type")
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not a riftkit export: {err}") from None
    if config["riftkit"].get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: format_version {config['riftkit'].get('format_version')} is not supported (expected {FORMAT_VERSION})")
    check_safetensors(folder / "model.safetensors")
    with quiet_transformers():
        encoder = AutoModel.from_config(AutoConfig.for_model(model_type, **settings), **SAFE_LOADING)
    model = Classifier(encoder, load_tokenizer(str(folder)), spec)
    weights = load_file(folder / "model.safetensors")
    encoder.load_state_dict({k[len("encoder."):]: v for k, v in weights.items() if k.startswith("encoder.")})
    model.head.load_state_dict({k[len("head."):]: v for k, v in weights.items() if k.startswith("head.")})
    return model.to(device).eval()
