"""The ASCC adversary (Dong et al., ICLR 2021): Eq. 8 of the RIFT paper.

Each perturbable word i gets weights w_i = softmax(z_i) over its valid
candidates (masked), z drawn Kaiming-normal. K Adam steps (learning rate 1.0)
maximise, per example,

    KL(p_clean || p_adv) - lambda_sparse * sum_i H(w_i) / 38400

for training (label-free, so no label leaking), or the cross-entropy on the
true label for the white-box evaluation attack. The constant 38400 (= 300 x
128) is the authors' scaling of the entropy term; with lambda_sparse = 15 it
pushes the weights towards vertices without dominating the KL.

The hull is over the encoder's input word embeddings (``inputs_embeds``);
position and segment embeddings are added by the encoder as for clean text.
The model is in eval mode during the search and its previous mode is
restored; gradients of the search reach only z, never the model.
"""

from __future__ import annotations

import math
import zlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import BatchEncoding

from ..config import AdversaryConfig
from ..models.classifier import Classifier
from ..models.modes import eval_mode
from ..substitutions.hull import HULL_KINDS, Hull, HullBuilder
from .base import ModelInputs, TrainBatch

ENTROPY_SCALE = 300 * 128


def masked_softmax(z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.softmax(z.masked_fill(~mask, float("-inf")), dim=-1)


def weight_entropy(weights: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Entropy of every word's weight vector, [B, W] (0 for one valid candidate)."""
    logs = torch.where(mask, weights.clamp_min(1e-30).log(), torch.zeros_like(weights))
    return -(weights * logs).sum(-1)


def kl_divergence(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """KL(p || q) per example, from logits."""
    p_log = F.log_softmax(p_logits, dim=-1)
    return (p_log.exp() * (p_log - F.log_softmax(q_logits, dim=-1))).sum(-1)


@dataclass
class AdversaryResult:
    weights: torch.Tensor  # [B, W, K] final hull weights (detached)
    objective_start: torch.Tensor  # [B] attack objective at the initial weights
    objective_end: torch.Tensor | None  # [B] at the final weights (when measured)


class ASCCAdversary:
    def __init__(self, steps: int = 10, lr: float = 1.0, sparse_weight: float = 15.0, loss: str = "kl"):
        if loss not in ("kl", "ce"):
            raise ValueError(f"ASCC loss must be 'kl' (training) or 'ce' (evaluation attack), got {loss!r}")
        self.steps, self.lr, self.sparse_weight, self.loss = steps, lr, sparse_weight, loss

    def _objective(self, model: Classifier, inputs: BatchEncoding, hull: Hull, candidates: torch.Tensor, z: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        weights = masked_softmax(z, hull.candidate_mask)
        embeds = hull.mix(weights, candidates)
        logits = model(inputs_embeds=embeds, attention_mask=inputs["attention_mask"], token_type_ids=inputs.get("token_type_ids"))
        if self.loss == "kl":
            gain = kl_divergence(target, logits)
        else:
            gain = F.cross_entropy(logits, target, reduction="none")
        return gain - self.sparse_weight * weight_entropy(weights, hull.candidate_mask).sum(-1) / ENTROPY_SCALE

    def search(
        self, model: Classifier, inputs: BatchEncoding, hull: Hull, target: torch.Tensor,
        generator: torch.Generator | None = None, measure_end: bool = False, init: torch.Tensor | None = None,
    ) -> AdversaryResult:
        """``target``: clean logits (loss "kl") or labels (loss "ce").

        ``measure_end`` spends one more forward pass to report the objective at the final weights.
        ``init``: starting logits z [B, W, K] (default: the Kaiming-normal draw from ``generator``);
        the white-box attack draws them per example so that they do not depend on the batch.
        """
        with eval_mode(model):
            B, W, K = hull.candidate_mask.shape
            if init is None:
                init = torch.empty(B, W, K, 1)
                if init.numel():
                    # fan-in as in the authors' [B, L, K, 1] draw: near-uniform starting weights
                    nn.init.kaiming_normal_(init, generator=generator)
                init = init.squeeze(-1)
            elif init.shape != (B, W, K):
                raise ValueError(f"init must have the hull's shape {(B, W, K)}, got {tuple(init.shape)}")
            z = init.detach().clone().to(hull.candidate_mask.device).requires_grad_(True)
            optimizer = torch.optim.Adam([z], lr=self.lr)
            target = target.detach()
            with torch.no_grad():  # the search moves z only: look the candidates up once
                candidates = model.word_embeddings(hull.candidate_ids)
            start = None
            for _ in range(self.steps):
                objective = self._objective(model, inputs, hull, candidates, z, target)
                if start is None:
                    start = objective.detach()
                (grad,) = torch.autograd.grad(-objective.sum(), [z])
                optimizer.zero_grad(set_to_none=True)
                z.grad = grad
                optimizer.step()
            end = None
            if measure_end or start is None:
                with torch.no_grad():
                    end = self._objective(model, inputs, hull, candidates, z, target)
            weights = masked_softmax(z.detach(), hull.candidate_mask)
            return AdversaryResult(weights, start if start is not None else end, end)


def start_logits(hull: Hull, keys: Sequence[str], seed: int, round_: int, length: int) -> torch.Tensor:
    """Random starting logits z [B, W, K] for the search, one independent stream per example.

    Example b's rows come from a generator keyed by (seed, keys[b], round_) alone (round_: the
    training step or evaluation round), so its start is the same whichever examples share its
    batch, and differs between steps. The scale is fixed, std = sqrt(2 / (length * K)): the
    Kaiming fan-in of the authors' [B, L, K, 1] draw, whose L is their fixed padded length
    (here the model's max_length), so it depends neither on the batch nor on the text's length.
    Rows past an example's own words (batch padding) stay 0.
    """
    B, W, K = hull.candidate_mask.shape
    std = math.sqrt(2.0 / (max(length, 1) * K))
    z = torch.zeros(B, W, K)
    for b, key in enumerate(keys):
        words = len(hull.words[b])
        if words:
            generator = torch.Generator().manual_seed(zlib.crc32(f"{seed}\x00{key}\x00{round_}".encode()))
            z[b, :words] = torch.randn(words, K, generator=generator) * std
    return z


# A remembered search: per hull word, its key (segment, position, candidates) and the log-weights it ended at.
WordKey = tuple[int, int, tuple[str, ...]]
LOG_WEIGHT_FLOOR = -10.0  # remembered log-weights are floored here, so that a few inner steps can still move them


class WarmStarts:
    """Per-example warm starts of the hull logits z (issue 24, item 3): an example's search starts where its previous
    search ended, so that searches of few inner steps (K = 1 or 2) accumulate over epochs, as in "free" adversarial
    training (Shafahi et al., 2019; Zhu et al.'s FreeLB keeps its perturbations within a batch instead).

    Stored per example (keyed by uid): for each hull word, the log-weights log w_ik of its candidates at the end of the
    search (softmax-invariant, floored at ``LOG_WEIGHT_FLOOR``). A later search of the example starts every candidate
    that was remembered at its log-weight, and every other one (a new length group, a new example) at the random
    start's value, close to 0: that is, as likely as the best remembered candidate, so new candidates get tried.
    Memory-bounded: at most ``max_examples`` examples, the least recently searched dropped first; about
    (4 x words x candidates) bytes of tensor an example. Its state goes into the checkpoint, so resume stays
    bit-identical.
    """

    def __init__(self, max_examples: int):
        if max_examples <= 0:
            raise ValueError(f"objective.adversary.warm_starts must be > 0 to keep warm starts, got {max_examples}")
        self.max_examples = max_examples
        self.memory: OrderedDict[str, tuple[list[WordKey], torch.Tensor]] = OrderedDict()

    @staticmethod
    def _keys(hull: Hull, b: int) -> list[WordKey]:
        return [(w.segment, w.position, w.candidates) for w in hull.words[b]]

    def starts(self, hull: Hull, uids: Sequence[str], fresh: torch.Tensor) -> torch.Tensor:
        """Starting logits [B, W, K]: ``fresh`` (the random start) with every remembered candidate replaced."""
        z = fresh.clone()
        for b, uid in enumerate(uids):
            remembered = self.memory.get(uid)
            if remembered is None:
                continue
            by_candidate = {(segment, position, candidate): float(value)
                            for (segment, position, candidates), row in zip(remembered[0], remembered[1])
                            for candidate, value in zip(candidates, row.tolist())}
            for w, (segment, position, candidates) in enumerate(self._keys(hull, b)):
                for k, candidate in enumerate(candidates):
                    value = by_candidate.get((segment, position, candidate))
                    if value is not None:
                        z[b, w, k] = value
        return z

    def remember(self, hull: Hull, uids: Sequence[str], weights: torch.Tensor) -> None:
        """Keep each example's final weights [B, W, K] (as log-weights of its valid candidates)."""
        log_weights = weights.detach().float().cpu().clamp_min(1e-30).log().clamp_min(LOG_WEIGHT_FLOOR)
        for b, uid in enumerate(uids):
            keys = self._keys(hull, b)
            # [W_b, K]: the columns past a word's own candidates are never read
            rows = log_weights[b, : len(keys)].clone()
            self.memory[uid] = (keys, rows)
            self.memory.move_to_end(uid)
        while len(self.memory) > self.max_examples:
            self.memory.popitem(last=False)

    def state_dict(self) -> dict:
        return {"uids": list(self.memory), "keys": [keys for keys, _ in self.memory.values()],
                "log_weights": [rows for _, rows in self.memory.values()]}

    def load_state_dict(self, state: dict) -> None:
        self.memory = OrderedDict((uid, ([(int(s), int(p), tuple(c)) for s, p, c in keys], rows))
                                  for uid, keys, rows in zip(state["uids"], state["keys"], state["log_weights"]))


class ASCCTrainingAdversary:
    """The training adversary of Adv-* and RIFT: Eq. 8 with the KL loss, as an :class:`~riftkit.objectives.base.Adversary`.

    For a batch: the hull of every attacked word (``hulls``; ``hull="length_groups"``: first one token-count group
    per word and round, so that substitutes of every token count are reachable: ``substitutions/hull.py``), random
    starts keyed by (seed, example uid, round) so that an example's x_hat does not depend on its batch mates and
    adding the adversary does not shift the random stream of dropout, the target p_clean without dropout, K steps of
    ``search``, and x_hat = the hull weights mixed over the live embedding table. ``step`` counts the rounds so far
    (checkpointed: a resumed run draws the same starts).

    x_hat's stats (for the log): ``adv_changed_share``, the share of attacked words whose argmax candidate is not the
    original word, and ``adv_other_length_share``, the share whose argmax candidate has another token count.
    """

    def __init__(self, search: ASCCAdversary, hulls: HullBuilder, segments: tuple[int, ...], seed: int = 0, hull: str = AdversaryConfig.hull,
                 warm_starts: int = AdversaryConfig.warm_starts):
        if hull not in HULL_KINDS:
            raise ValueError(f"objective.adversary.hull must be one of {list(HULL_KINDS)}, got {hull!r}")
        self.search, self.hulls, self.segments, self.seed, self.hull = search, hulls, segments, seed, hull
        self.warm = WarmStarts(warm_starts) if warm_starts else None
        self.step = 0

    def state_dict(self) -> dict:
        return {"step": self.step, **({"warm_starts": self.warm.state_dict()} if self.warm is not None else {})}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])
        if self.warm is not None:
            self.warm.load_state_dict(state["warm_starts"])

    def starts(self, model: Classifier, batch: TrainBatch, step: int, hull: Hull | None = None) -> torch.Tensor:
        """The search's starting logits [B, W, K] for ``batch`` in round ``step``."""
        hull = hull if hull is not None else self.hulls.build(batch.examples, batch.inputs, self.segments)
        return start_logits(hull, [e.uid for e in batch.examples], self.seed, step, model.spec.max_length)

    def perturb(self, model: Classifier, batch: TrainBatch, step: int | None = None) -> ModelInputs:
        """x_hat of Eq. 8 for ``batch`` (round ``step``, default: the next one, which then counts as done)."""
        round_ = self.step if step is None else step
        texts, inputs, hull = self.hulls.for_round(self.hull, batch.examples, batch.inputs, self.segments, self.seed, round_,
                                                   lambda anchors: model.encode_examples(anchors).to(model.device))
        init = self.starts(model, batch, round_, hull)
        uids = [e.uid for e in batch.examples]
        if self.warm is not None:
            init = self.warm.starts(hull, uids, init)
        hull = hull.to(model.device)
        with torch.no_grad(), eval_mode(model):
            clean_eval_logits = model(**batch.inputs)  # the adversary's target: p_clean without dropout
        found = self.search.search(model, inputs, hull, clean_eval_logits, init=init.to(model.device))
        if self.warm is not None:
            self.warm.remember(hull, uids, found.weights)
        if step is None:
            self.step += 1
        stats = self.substitution_stats(batch.examples, texts, hull, found.weights)
        return ModelInputs(hull.mix(found.weights, model.word_embeddings), inputs["attention_mask"], inputs.get("token_type_ids"),
                           stats=stats)

    def substitution_stats(self, originals, texts, hull: Hull, weights: torch.Tensor) -> dict[str, float]:
        """Shares of the attacked words (those with substitutes) that x_hat's argmax text changes, and changes to a
        substitute of another token count."""
        choice = weights.argmax(-1).tolist() if weights.numel() else []
        attacked = changed = other_length = 0
        for b, (original, text) in enumerate(zip(originals, texts)):
            in_hull = {(w.segment, w.position): w.candidates[choice[b][i]] for i, w in enumerate(hull.words[b])}
            for segment in self.segments:
                for position, word in enumerate(original.segments[segment]):
                    if not self.hulls.substitutions[word]:
                        continue
                    attacked += 1
                    final = in_hull.get((segment, position), text.segments[segment][position])
                    if final != word:
                        changed += 1
                        other_length += len(self.hulls.token_ids(final)) != len(self.hulls.token_ids(word))
        return {"adv_changed_share": changed / attacked if attacked else 0.0,
                "adv_other_length_share": other_length / attacked if attacked else 0.0}
