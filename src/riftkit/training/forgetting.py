"""The forgetting signal of paper Fig. 2: how far fine-tuning has moved the encoder from its pre-trained state.

Three numbers, logged at every epoch end (and every ``train.log_forgetting_every_steps``):

- ``theta_distance``: ||theta - theta_0||_2 over the encoder's parameters (weight space);
- ``feature_distance``: mean Euclidean distance ||F(x) - F0(x)||_2 between the student's and the
  pre-trained encoder's pooled features, over a fixed probe of dev inputs (feature space);
- ``feature_cosine``: their mean cosine similarity.

F0 is frozen and deterministic in eval mode, so its features on a fixed probe set are constants:
they are computed once, before the first optimiser step, and kept ([P, H], a few hundred KB) instead
of a second copy of the encoder. Both sides are measured in eval mode (no dropout; Mixout uses the
learned weights) under ``no_grad``, with the same batches (same padding), so at step 0 the distances
are exactly 0 and the cosine 1. The probe draws no random numbers: it never changes a training run.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..data.examples import Example
from ..models.classifier import Classifier
from ..objectives.ptwd import PretrainedWeights
from ..models.modes import eval_mode


class ForgettingProbe:
    """Snapshot theta_0 and F0's pooled features on ``probe`` now; measure the distance to them later.

    ``probe``: the examples (a seeded sample of dev, 256 in training); empty: weight space only.
    """

    def __init__(self, model: Classifier, probe: Sequence[Example], batch_size: int = 128):
        self.probe = list(probe)
        self.batch_size = batch_size
        self.theta0 = PretrainedWeights(model.encoder)
        self.reference = self._features(model) if self.probe else None  # F0(x), [P, H]

    @torch.no_grad()
    def _features(self, model: Classifier) -> torch.Tensor:
        with eval_mode(model):
            chunks = []
            for start in range(0, len(self.probe), self.batch_size):
                inputs = model.encode_examples(self.probe[start : start + self.batch_size]).to(model.device)
                chunks.append(model.features(**inputs).float())
            return torch.cat(chunks)

    @torch.no_grad()
    def __call__(self, model: Classifier) -> dict[str, float]:
        """``theta_distance`` (always), ``feature_distance`` and ``feature_cosine`` (with a probe set)."""
        values = {"theta_distance": self.theta0.distance(model.encoder).item()}
        if self.reference is not None:
            student = self._features(model)
            reference = self.reference.to(student.device)
            values["feature_distance"] = (student - reference).norm(dim=-1).mean().item()
            values["feature_cosine"] = F.cosine_similarity(student, reference, dim=-1).mean().item()
        return values
