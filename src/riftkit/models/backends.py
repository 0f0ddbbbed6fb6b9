"""Forward paths for the black-box attacks' queries: plain PyTorch fp32, or ONNX Runtime when it is exact.

An attack's time goes to the victim's forward pass (``Classifier.predict_proba``).
On CPU, ONNX Runtime runs the same fp32 graph faster (benchmarks/forward_paths.py
measures it). A path is used only if it is *exact* on the texts at hand: on a probe
of the attacked inputs it must give the same argmax on every text and class
probabilities within ``EXACT_TOLERANCE`` of PyTorch's; otherwise ``auto`` falls back
to PyTorch and says why. Approximate paths (bf16, int8) are not offered: their
outcomes would need rechecking with the exact model, and fp32 ONNX is faster anyway.

The white-box ASCC attack and training need gradients and always use PyTorch.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from .classifier import Classifier

BACKENDS = ("auto", "torch", "onnxruntime")
EXACT_TOLERANCE = 1e-4  # largest |p_onnx - p_torch| over every class of every probe text
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
    attacked examples). ``auto``: ONNX Runtime when the model is on the CPU and all of that holds,
    else PyTorch (the record says why).
    """
    if choice not in BACKENDS:
        raise BackendError(f"attack.backend={choice!r} is not one of {list(BACKENDS)}")
    if choice == "torch":
        return model, {"backend": "torch"}
    if not isinstance(model, Classifier):  # a victim of the caller's own (tests, wrappers): nothing to export
        if choice == "onnxruntime":
            raise BackendError(f"attack.backend=onnxruntime needs a riftkit Classifier, got {type(model).__name__}")
        return model, {"backend": "torch", "why": f"auto: the victim is a {type(model).__name__}, not a riftkit Classifier"}
    if model.device.type != "cpu":
        if choice == "onnxruntime":
            raise BackendError("attack.backend=onnxruntime runs on the CPU; the model is on " + str(model.device))
        return model, {"backend": "torch", "why": f"auto: the model is on {model.device}"}
    try:
        victim = OnnxRuntimeVictim(model)
        check = agreement(model, victim, probe)
        if check["argmax_agreement"] < 1.0 or check["max_abs_prob_diff"] > EXACT_TOLERANCE:
            raise BackendError(f"ONNX Runtime is not exact on {check['texts']} probe texts (argmax agreement "
                               f"{check['argmax_agreement']:.4f}, max |dp| {check['max_abs_prob_diff']:.2e} > {EXACT_TOLERANCE})")
    except BackendError as err:
        if choice == "onnxruntime":
            raise
        log(f"backend: auto falls back to torch: {err}")
        return model, {"backend": "torch", "why": f"auto: {err}"}
    record = {"backend": "onnxruntime", "probe": check}
    log(f"backend: onnxruntime (exact on {check['texts']} probe texts: max |dp| {check['max_abs_prob_diff']:.1e})")
    return victim, record
