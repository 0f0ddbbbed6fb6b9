"""Language models for the attack constraint (a substitute may cost at most 5 nats around it).

One interface, :class:`LanguageModel`: the log-probability of short word
windows, and from it :meth:`LanguageModel.window_drops`, how much the window
around a position loses when the original word is replaced by each
substitute. Two implementations:

- :class:`NGramLM`: an interpolated Kneser-Ney n-gram model (trigram by
  default) that riftkit trains on a corpus, with no download: by default the
  train splits of every data set in the data directory (``corpus.py``), or
  the task's training texts only (``attack.lm: ngram-task``). Counting is vectorised with numpy; the model is saved as one
  ``.safetensors`` file (n-gram keys and counts as integer tensors, the
  vocabulary as JSON in the header), never pickled.
- :class:`CausalLM`: any Hugging Face causal LM (e.g. ``gpt2``) for users
  with internet; windows are scored in batches.

The paper's LM scores (Jia et al. 2019: an LSTM LM of the One Billion Word
benchmark) are not available offline; this is the substitute, and it judges
differently (README, "The language-model constraint").
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

UNK, BOS, EOS = "<unk>", "<s>", "</s>"
NGRAM_FORMAT = "riftkit-ngram-kn-v1"


@dataclass(frozen=True)
class Window:
    """Words to score; ``starts``/``ends``: the window touches the start/end of the text (boundary tokens count)."""

    words: tuple[str, ...]
    starts: bool
    ends: bool


class LanguageModel(ABC):
    @abstractmethod
    def window_logprobs(self, windows: Sequence[Window]) -> list[float]:
        """Total log-probability (nats) of each window's words (and the end-of-text token when ``ends``)."""

    def window_drops(self, words: tuple[str, ...], candidates: Mapping[int, Sequence[str]], radius: int = 3) -> dict[int, list[float]]:
        """For each position, log P(window with the original word) - log P(window with each substitute)."""
        windows: list[Window] = []
        for position, subs in candidates.items():
            lo, hi = max(0, position - radius), min(len(words), position + radius + 1)
            base, at = words[lo:hi], position - lo
            for word in (words[position], *subs):
                windows.append(Window(base[:at] + (word,) + base[at + 1 :], lo == 0, hi == len(words)))
        scores = self.window_logprobs(windows) if windows else []
        drops, k = {}, 0
        for position, subs in candidates.items():
            original = scores[k]
            drops[position] = [original - s for s in scores[k + 1 : k + 1 + len(subs)]]
            k += 1 + len(subs)
        return drops


# -- n-gram Kneser-Ney ---------------------------------------------------------------------


class NGramLM(LanguageModel):
    """Interpolated Kneser-Ney: raw counts at the highest order, continuation counts below, a uniform floor.

    Build with :meth:`train`; :meth:`save` / :meth:`load` use safetensors.
    """

    def __init__(self, vocab: Sequence[str], order: int, grams: Mapping[int, tuple[np.ndarray, np.ndarray]]):
        if order < 2:
            raise ValueError(f"n-gram order must be >= 2, got {order}")
        self.vocab = list(vocab)
        if self.vocab[:3] != [UNK, BOS, EOS]:
            raise ValueError(f"n-gram vocabulary must start with {UNK}, {BOS}, {EOS}")
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.order = order
        self.metadata: dict[str, str] = {}  # what save() was given besides the model (e.g. the corpus it came from)
        self.size = len(self.vocab)
        _check_key_range(self.size, order)
        # grams[k] = (sorted int64 keys of k-grams, counts): raw at k = order, continuation below
        self.grams = {k: (np.asarray(keys, dtype=np.int64), np.asarray(values, dtype=np.int64)) for k, (keys, values) in grams.items()}
        self.discount = {k: _discount(values) for k, (_, values) in self.grams.items()}
        keys1, values1 = self.grams[1]
        self.total1 = max(int(values1.sum()), 1)
        self.distinct1 = int((values1 > 0).sum())
        # per context (order >= 2): sorted context keys, total count, distinct continuations
        self.contexts = {}
        for k in range(2, order + 1):
            keys, values = self.grams[k]
            ctx = keys // self.size
            uniq, start, distinct = np.unique(ctx, return_index=True, return_counts=True)
            totals = np.add.reduceat(values, start) if len(values) else np.zeros(0, dtype=np.int64)
            self.contexts[k] = (uniq, totals, distinct)

    # -- training ------------------------------------------------------------------------------
    @classmethod
    def train(cls, texts: Iterable[Sequence[str]], order: int = 3, max_vocab: int | None = None, min_count: int = 1) -> NGramLM:
        """Count n-grams of word sequences (riftkit's lowercase words); rare words become <unk>."""
        texts = [tuple(t) for t in texts]
        counts = Counter(w for t in texts for w in t)
        kept = [w for w, c in counts.most_common(max_vocab) if c >= min_count and w not in (UNK, BOS, EOS)]
        vocab = [UNK, BOS, EOS] + kept
        size = len(vocab)
        _check_key_range(size, order)
        index = {w: i for i, w in enumerate(vocab)}
        pad = [index[BOS]] * (order - 1)
        stream, owner = [], []
        for n, text in enumerate(texts):
            ids = pad + [index.get(w, 0) for w in text] + [index[EOS]]
            stream.extend(ids)
            owner.extend([n] * len(ids))
        ids = np.asarray(stream, dtype=np.int64)
        text_of = np.asarray(owner, dtype=np.int64)
        grams: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        unique_by_order: dict[int, np.ndarray] = {}
        for k in range(1, order + 1):
            starts = np.arange(len(ids) - k + 1)
            starts = starts[text_of[starts] == text_of[starts + k - 1]]  # no n-gram spans two texts
            keys = np.zeros(len(starts), dtype=np.int64)
            for j in range(k):
                keys = keys * size + ids[starts + j]
            uniq, raw = np.unique(keys, return_counts=True)
            unique_by_order[k] = uniq
            if k == order:
                grams[k] = (uniq, raw.astype(np.int64))
        for k in range(1, order):
            # continuation count of a k-gram g: distinct words seen right before it
            suffixes = unique_by_order[k + 1] % (size**k)
            uniq, cont = np.unique(suffixes, return_counts=True)
            grams[k] = (uniq, cont.astype(np.int64))
        return cls(vocab, order, grams)

    # -- scoring -------------------------------------------------------------------------------
    def ids(self, words: Sequence[str]) -> list[int]:
        return [self.index.get(w, 0) for w in words]

    def logprob(self, history: np.ndarray, words: np.ndarray) -> np.ndarray:
        """log P(word | history) for rows of ``history`` [M, order-1] (ids, -1 = no word) and ``words`` [M]."""
        words = np.asarray(words, dtype=np.int64)
        history = np.asarray(history, dtype=np.int64).reshape(len(words), self.order - 1)
        keys1, values1 = self.grams[1]
        d1 = self.discount[1]
        count = _lookup(keys1, values1, words)
        prob = np.maximum(count - d1, 0) / self.total1 + d1 * self.distinct1 / self.total1 / self.size
        for k in range(2, self.order + 1):
            context = history[:, self.order - k :]  # the last k-1 words
            usable = (context >= 0).all(axis=1)
            ctx_key = np.zeros(len(words), dtype=np.int64)
            for j in range(k - 1):
                ctx_key = ctx_key * self.size + np.maximum(context[:, j], 0)
            uniq, totals, distinct = self.contexts[k]
            pos = np.searchsorted(uniq, ctx_key)
            pos_c = np.minimum(pos, max(len(uniq) - 1, 0))
            found = usable & (len(uniq) > 0) & (uniq[pos_c] == ctx_key) if len(uniq) else np.zeros(len(words), bool)
            if not found.any():
                continue
            keys, values = self.grams[k]
            gram_count = _lookup(keys, values, ctx_key * self.size + words)
            d = self.discount[k]
            total = totals[pos_c].astype(np.float64)
            mixed = (np.maximum(gram_count - d, 0) + d * distinct[pos_c] * prob) / np.maximum(total, 1)
            prob = np.where(found, mixed, prob)
        return np.log(prob)

    def window_logprobs(self, windows: Sequence[Window]) -> list[float]:
        histories, targets, owner = [], [], []
        n = self.order - 1
        bos, eos = self.index[BOS], self.index[EOS]
        for w, window in enumerate(windows):
            ids = self.ids(window.words)
            context = [bos] * n if window.starts else [-1] * n
            tokens = ids + ([eos] if window.ends else [])
            seq = context + tokens
            for t in range(len(tokens)):
                histories.append(seq[t : t + n])
                targets.append(tokens[t])
                owner.append(w)
        if not targets:
            return [0.0] * len(windows)
        logp = self.logprob(np.asarray(histories, dtype=np.int64), np.asarray(targets, dtype=np.int64))
        return np.bincount(np.asarray(owner), weights=logp, minlength=len(windows)).tolist()

    def perplexity(self, texts: Iterable[Sequence[str]]) -> float:
        windows = [Window(tuple(t), True, True) for t in texts]
        total = sum(self.window_logprobs(windows))
        tokens = sum(len(w.words) + 1 for w in windows)
        return math.exp(-total / max(tokens, 1))

    # -- storage -------------------------------------------------------------------------------
    def save(self, path: str | Path, metadata: Mapping[str, str] | None = None, extra: Mapping[str, np.ndarray] | None = None) -> Path:
        """Write one safetensors file; ``metadata`` (str -> str) and ``extra`` tensors travel with the model.

        Raises ValueError when a name of ``metadata`` or ``extra`` is one the format itself uses.
        """
        from safetensors.numpy import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {}
        for k, (keys, values) in self.grams.items():
            tensors[f"keys_{k}"] = np.ascontiguousarray(keys)
            tensors[f"counts_{k}"] = np.ascontiguousarray(values)
        header = {"format": NGRAM_FORMAT, "order": str(self.order), "vocab": json.dumps(self.vocab)}
        for name, value in (extra or {}).items():
            if name in tensors:
                raise ValueError(f"extra tensor name {name!r} is reserved by the n-gram format")
            tensors[name] = np.ascontiguousarray(value)
        for name, value in (metadata or {}).items():
            if name in header:
                raise ValueError(f"metadata name {name!r} is reserved by the n-gram format")
            header[name] = str(value)
        save_file(tensors, str(path), metadata=header)
        return path

    @classmethod
    def load(cls, path: str | Path) -> NGramLM:
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"n-gram language model not found: {path}")
        try:
            with safe_open(str(path), framework="numpy") as handle:
                meta = handle.metadata() or {}
                if meta.get("format") != NGRAM_FORMAT:
                    raise ValueError(f"{path}: not a riftkit n-gram model (header field 'format' is {meta.get('format')!r}, expected {NGRAM_FORMAT!r})")
                order = int(meta["order"])
                vocab = json.loads(meta["vocab"])
                grams = {k: (handle.get_tensor(f"keys_{k}"), handle.get_tensor(f"counts_{k}")) for k in range(1, order + 1)}
        except (KeyError, json.JSONDecodeError) as err:
            raise ValueError(f"{path}: damaged n-gram model header (field {err})") from None
        lm = cls(vocab, order, grams)
        lm.metadata = {k: v for k, v in meta.items() if k not in ("format", "order", "vocab")}
        return lm


def _check_key_range(size: int, order: int) -> None:
    if size**order >= 2**63:
        raise ValueError(f"an order-{order} model over {size} words does not fit 64-bit n-gram keys: lower max_vocab or the order")


def _lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """values[key] for each query key, 0 where absent (keys sorted)."""
    if len(keys) == 0:
        return np.zeros(len(query), dtype=np.float64)
    pos = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    return np.where(keys[pos] == query, values[pos], 0).astype(np.float64)


def _discount(values: np.ndarray) -> float:
    """Ney's estimate D = n1 / (n1 + 2 n2) from counts of counts, kept inside [0.1, 0.9]."""
    n1, n2 = int((values == 1).sum()), int((values == 2).sum())
    if n1 + 2 * n2 == 0:
        return 0.75
    return min(max(n1 / (n1 + 2 * n2), 0.1), 0.9)


def drop_subphrases(texts: Iterable[Sequence[str]], max_words: int = 80) -> list[tuple[str, ...]]:
    """Distinct texts that are not a contiguous piece of another (kept) text.

    SST-2's training set is phrase-level: every sentence comes with dozens of
    its own sub-phrases, which would multiply the sentence's n-gram counts and
    make every unseen continuation look far less likely than it is. Only texts
    of at most ``max_words`` words are indexed (longer ones are kept as they are).
    """
    unique = sorted(set(map(tuple, texts)), key=lambda t: (-len(t), t))  # a fixed order: the same corpus, the same file
    pieces: set[tuple[str, ...]] = set()
    kept = []
    for text in unique:
        if text in pieces:
            continue
        kept.append(text)
        if len(text) <= max_words:
            pieces.update(text[i:j] for i in range(len(text)) for j in range(i + 1, len(text) + 1))
    return kept


# -- Hugging Face causal LM ------------------------------------------------------------------------


class CausalLM(LanguageModel):
    """Scores windows with a Hugging Face causal LM (``gpt2``, ...): sum of token log-probabilities.

    The window text is the words joined by spaces, preceded by the BOS token
    (GPT-2: its end-of-text token), so the first word is scored too.
    """

    def __init__(self, model, tokenizer, device: str = "cpu", batch_size: int = 64):
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.device = device
        self.batch_size = batch_size
        # the first word is scored after a start token: BOS, else EOS (GPT-2), else CLS
        self.start = next((t for t in (tokenizer.bos_token_id, tokenizer.eos_token_id, getattr(tokenizer, "cls_token_id", None)) if t is not None), None)
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (self.start or 0)

    @classmethod
    def from_pretrained(cls, name: str, device: str = "cpu", batch_size: int = 64) -> CausalLM:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from ..models.encoder import SAFE_LOADING  # no code runs from the Hub; weights from safetensors only

        model = AutoModelForCausalLM.from_pretrained(name, use_safetensors=True, **SAFE_LOADING)
        return cls(model, AutoTokenizer.from_pretrained(name, **SAFE_LOADING), device, batch_size)

    def window_logprobs(self, windows: Sequence[Window]) -> list[float]:
        import torch

        sequences = []
        for window in windows:
            ids = self.tokenizer(" ".join(window.words), add_special_tokens=False)["input_ids"]
            if window.ends and self.tokenizer.eos_token_id is not None:
                ids = ids + [self.tokenizer.eos_token_id]
            sequences.append(([self.start] if self.start is not None else []) + ids)
        scores = []
        for begin in range(0, len(sequences), self.batch_size):
            chunk = sequences[begin : begin + self.batch_size]
            width = max(len(s) for s in chunk)
            ids = torch.full((len(chunk), width), self.pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, seq in enumerate(chunk):
                ids[row, : len(seq)] = torch.tensor(seq)
                mask[row, : len(seq)] = 1
            with torch.no_grad():
                logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits.float()
            logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:, None].to(self.device))[..., 0]
            scores.extend((logp * mask[:, 1:].to(self.device)).sum(-1).tolist())
        return scores


def load_language_model(spec: str, device: str = "cpu") -> LanguageModel:
    """``hf:<name>`` for a Hugging Face causal LM, otherwise the path of a saved n-gram model."""
    if spec.startswith("hf:"):
        return CausalLM.from_pretrained(spec[3:], device=device)
    return NGramLM.load(spec)
