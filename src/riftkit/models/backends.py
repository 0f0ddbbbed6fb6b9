"""Forward paths for the black-box attacks' queries: PyTorch fp32, ONNX Runtime fp32, or bf16 with rechecks.

An attack's time goes to the victim's forward pass (``Classifier.predict_proba``), so
the forward pass is the ceiling (benchmarks/forward_paths.py measures each path).

- ``torch``: the model as loaded, fp32. The reference every other path is held to.
- ``onnxruntime``: the same fp32 graph in ONNX Runtime. *Exact*: used only if, on a probe of
  the attacked inputs, every argmax is identical and class probabilities are within
  ``EXACT_TOLERANCE`` of PyTorch's. Measured 0.95-1.06x on idle CPU cores: no gain here.
- ``bf16``: the model under bf16 autocast, 1.5-1.8x on CPU. *Approximate* (argmax agreement
  99.95%, |dp| up to 4e-3), so it is used only with the exact model beside it: the exact
  model decides every reported outcome (the original's prediction, every reported flip; a
  refuted flip is searched again exactly; BlackBoxAttack._attack_one), and
  benchmarks/backend_outcomes.py measures vanilla and robust accuracy against the exact path.
- ``auto``: the fastest usable path: bf16 (with rechecks) when its argmax agrees on at
  least ``APPROXIMATE_MIN_AGREEMENT`` of the probe, else PyTorch.

The white-box ASCC attack and training need gradients and always use PyTorch.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from .classifier import Classifier

BACKENDS = ("auto", "torch", "onnxruntime", "bf16")
EXACT_TOLERANCE = 1e-4  # largest |p_onnx - p_torch| over every class of every probe text
# An approximate path that disagrees with the exact model on more of the probe than this would spend its
# speed on reruns (or be broken for this model): auto falls back to PyTorch. bf16 measured 0.9995.
APPROXIMATE_MIN_AGREEMENT = 0.99
INPUT_ORDER = ("input_ids", "attention_mask", "token_type_ids")  # Classifier.forward's positional order


class BackendError(RuntimeError):
    """A forward path that cannot be used here (not installed, export failed, not exact)."""


def export_onnx(model: Classifier, folder: str | Path) -> tuple[Path, list[str]]:
    """Export ``model`` (token ids -> logits, fp32) to ``folder/model.onnx`` with dynamic batch and length.

    Returns the file and its input names. The example batch is padded, so that the attention
    mask's arithmetic is traced rather than folded away. Raises BackendError if export fails.
    """
    model = model.eval()
    segments = 2 if model.spec.task_kind == "pair" else 1
    short, long = ("a", "short", "example"), ("a", "longer", "example", "with", "padding", "in", "its", "batch", "mate")
    example = model.encode([(short,) * segments, (long,) * segments])
    example = example.to(model.device)
    names = [n for n in INPUT_ORDER if n in example]
    path = Path(folder) / "model.onnx"
    axes = {name: {0: "batch", 1: "tokens"} for name in names}
    try:
        # the tracer warns about Python-level branches it freezes; exactness is checked on real inputs afterwards
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, tuple(example[n] for n in names), str(path), input_names=names, output_names=["logits"],
                              dynamic_axes={**axes, "logits": {0: "batch"}}, dynamo=False, opset_version=17)
    except Exception as err:  # the exporter raises many kinds; all mean "this path is not usable here"
        raise BackendError(f"ONNX export failed: {type(err).__name__}: {str(err)[:300]}") from None
    return path, names


class OnnxRuntimeVictim:
    """The black-box attacks' view of a classifier (``predict_proba``, ``visible_words``) through ONNX Runtime."""

    name = "onnxruntime"

    def __init__(self, model: Classifier, threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise BackendError("onnxruntime is not installed (pip install onnxruntime)") from None
        self.model = model
        self._folder = tempfile.TemporaryDirectory(prefix="riftkit-onnx-")  # removed with this object
        path, self.input_names = export_onnx(model, self._folder.name)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    @property
    def spec(self):
        return self.model.spec

    def visible_words(self, segments) -> tuple[int, ...]:
        return self.model.visible_words(segments)

    def logits(self, batch) -> torch.Tensor:
        return torch.from_numpy(self.session.run(None, {k: batch[k].cpu().numpy() for k in self.input_names})[0])

    def predict_proba(self, segments: Sequence, batch_size: int = 128) -> torch.Tensor:
        """As :meth:`Classifier.predict_proba`: length-sorted batches, probabilities back in input order. Shape [N, C]."""
        order = sorted(range(len(segments)), key=lambda i: sum(len(s) for s in segments[i]))
        probs = torch.empty(len(segments), len(self.model.spec.label_names))
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            probs[chunk] = torch.softmax(self.logits(self.model.encode([segments[i] for i in chunk])).float(), dim=-1)
        return probs


class Bf16Victim:
    """The black-box attacks' view of a classifier under bf16 autocast (approximate: needs the exact model's rechecks)."""

    name = "bf16"

    def __init__(self, model: Classifier):
        self.model = model
        self.exact = model  # the model that decides every reported outcome (attacks/registry.py hands it to the search)

    @property
    def spec(self):
        return self.model.spec

    def visible_words(self, segments) -> tuple[int, ...]:
        return self.model.visible_words(segments)

    def predict_proba(self, segments: Sequence, batch_size: int = 128) -> torch.Tensor:
        """As :meth:`Classifier.predict_proba` (shape [N, C], fp32 probabilities), computed in bf16."""
        with torch.autocast(self.model.device.type, dtype=torch.bfloat16):
            return self.model.predict_proba(segments, batch_size=batch_size)


def agreement(model: Classifier, victim, probe: Sequence, batch_size: int = 32) -> dict:
    """Argmax agreement and largest probability difference of ``victim`` against ``model`` on ``probe``."""
    reference = model.predict_proba(probe, batch_size=batch_size)
    probs = victim.predict_proba(probe, batch_size=batch_size)
    return {"texts": len(probe), "argmax_agreement": float((probs.argmax(-1) == reference.argmax(-1)).float().mean()),
            "max_abs_prob_diff": float((probs - reference).abs().max()) if len(probe) else 0.0}


def resolve_backend(model: Classifier, choice: str, probe: Sequence, log: Callable[[str], None] = lambda m: None):
    """The victim the black-box searches query, and a record of the choice (for settings.json and the summary).

    ``torch``: the model itself. ``onnxruntime``: ONNX Runtime, or BackendError when it is not
    installed, does not export, or is not exact on ``probe`` (pre-tokenised inputs, e.g. the
    attacked examples). ``bf16``: the model under bf16 autocast; the record then has
    ``"approximate": true``, and the victim carries the exact model (``.exact``) that the attack
    rechecks with. ``auto``: bf16 when the model is a riftkit Classifier and bf16's argmax
    agrees with fp32 on at least APPROXIMATE_MIN_AGREEMENT of ``probe``, else PyTorch (the record says why).
    """
    if choice not in BACKENDS:
        raise BackendError(f"attack.backend={choice!r} is not one of {list(BACKENDS)}")
    if choice == "torch":
        return model, {"backend": "torch"}
    if not isinstance(model, Classifier):  # a victim of the caller's own (tests, wrappers): nothing to export
        if choice != "auto":
            raise BackendError(f"attack.backend={choice} needs a riftkit Classifier, got {type(model).__name__}")
        return model, {"backend": "torch", "why": f"auto: the victim is a {type(model).__name__}, not a riftkit Classifier"}
    if choice == "onnxruntime":
        return _onnxruntime(model, probe, log)
    victim = Bf16Victim(model)
    check = agreement(model, victim, probe)
    if check["argmax_agreement"] < APPROXIMATE_MIN_AGREEMENT and choice == "auto":
        why = (f"auto: bf16 agrees with fp32 on only {check['argmax_agreement']:.4f} of {check['texts']} probe texts "
               f"(< {APPROXIMATE_MIN_AGREEMENT})")
        log(f"backend: {why}; using torch")
        return model, {"backend": "torch", "why": why, "probe": check}
    log(f"backend: bf16 autocast, every reported outcome rechecked with fp32 (probe: argmax agreement "
        f"{check['argmax_agreement']:.4f} on {check['texts']} texts, max |dp| {check['max_abs_prob_diff']:.1e})")
    return victim, {"backend": "bf16", "approximate": True, "recheck": "exact fp32 model decides every reported outcome", "probe": check}


def _onnxruntime(model: Classifier, probe: Sequence, log: Callable[[str], None]):
    """ONNX Runtime when it is installed, exports, runs on this device and is exact on ``probe``; else BackendError."""
    if model.device.type != "cpu":
        raise BackendError("attack.backend=onnxruntime runs on the CPU; the model is on " + str(model.device))
    victim = OnnxRuntimeVictim(model)
    check = agreement(model, victim, probe)
    if check["argmax_agreement"] < 1.0 or check["max_abs_prob_diff"] > EXACT_TOLERANCE:
        raise BackendError(f"ONNX Runtime is not exact on {check['texts']} probe texts (argmax agreement "
                           f"{check['argmax_agreement']:.4f}, max |dp| {check['max_abs_prob_diff']:.2e} > {EXACT_TOLERANCE})")
    log(f"backend: onnxruntime (exact on {check['texts']} probe texts: max |dp| {check['max_abs_prob_diff']:.1e})")
    return victim, {"backend": "onnxruntime", "probe": check}
