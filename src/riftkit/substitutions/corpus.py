"""The corpus of the default n-gram LM (``attack.lm: ngram-broad``) and its cache.

Trained on one task's training texts, the constraint's Kneser-Ney LM gives
every substitute that task never uses the floor probability, and sparse
contexts everywhere else (benchmarks/lm_constraint_share.py). The broad
corpus is every training text riftkit has at hand, never a test text:

- the train-role file of every registered data set (``data/registry.py``)
  found in the data directory, when its test role is a separate file: SST-2
  train, IMDB train, SNLI dev (offline SNLI trains on dev and tests on test),
  AG News and MNLI train. A data set whose test split is carved from the same
  file (MR's ``all.jsonl.gz``) is left out: any of its texts may be a test text;
- the user's text files (``attack.lm_corpora``): one text per line, put
  through riftkit's pre-tokenisation (:func:`riftkit.data.words`), plain or
  ``.gz``;
- minus every text that is (mostly) a test text. Held out are the texts of
  every test-role file present and, when the attacked split overlaps the
  corpus, the attacked split as well (a variant model, cached under its own
  key). "Mostly": the text equals a held-out text, or at least half of its
  characters lie in sentences that occur in held-out texts, compared on
  letters and digits only so that two tokenisations of one sentence match
  (SST-2's ``it 's`` and MR's ``it's``). This removes SST-2's training
  sentences, which are MR's sentences, when MR is attacked, and the 123 IMDB
  reviews that are in both its train and test files, and keeps a review that
  shares one stock sentence ("i loved it .") with a test review.

SST-2's training set is phrase-level, so it goes through
:func:`~riftkit.substitutions.lm.drop_subphrases`; other registered files are
de-duplicated (SNLI repeats each premise for three hypotheses); user corpora
are taken as they are (their repeats are real frequencies).

The model is trained once per corpus and cached in ``$RIFTKIT_CACHE_DIR/lm``
(default ``$XDG_CACHE_HOME/riftkit/lm``, else ``~/.cache/riftkit/lm``),
outside the repository, under the corpus key: a SHA-256 of the n-gram order,
the pre-tokeniser and recipe versions, each source's data set and content
hash in order, and the held-out files' content hashes. It is written to a
temporary file and renamed, so no reader sees half a model. The file carries
the corpus's fingerprints (hashes of its texts and sentences), so an attack can
check whether its split overlaps the corpus without reading the corpus again.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.pretokenize import PRETOKENIZER_VERSION, words
from ..data.readers import read_file
from ..data.registry import REGISTRY
from .lm import NGramLM, drop_subphrases

CACHE_DIR_ENV = "RIFTKIT_CACHE_DIR"
CORPUS_RECIPE = "riftkit-lm-corpus-v1"  # bump when what goes into the corpus changes: old cache entries then go unused
HELD_OUT_SHARE = 0.5  # a corpus text goes when this share of its characters lies in held-out sentences
PHRASE_LEVEL = frozenset({"sst2"})  # registered data sets whose train file holds every sentence's sub-phrases
SENTENCE_END = frozenset(".!?;")
FINGERPRINT_TENSORS = ("corpus_text_hash", "corpus_sentence_hash", "corpus_sentence_chars", "corpus_sentence_owner")

Text = tuple[str, ...]


def lm_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """Where cached language models live: ``cache_dir``, else ``$RIFTKIT_CACHE_DIR/lm``, else the user's cache folder."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV]).expanduser() / "lm"
    base = Path(os.environ["XDG_CACHE_HOME"]).expanduser() if os.environ.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "riftkit" / "lm"


# -- fingerprints: which texts are (mostly) test texts -----------------------------------------------


def _letters(text: Iterable[str]) -> str:
    """The letters and digits of some words: two tokenisations of one sentence agree on them."""
    return "".join(ch for word in text for ch in word if ch.isalnum())


def _hash(s: str) -> int:
    """A stable 64-bit hash (Python's own ``hash`` of a str changes from process to process); 0 means "no text"."""
    value = int.from_bytes(hashlib.blake2b(s.encode("utf-8"), digest_size=8).digest(), "little", signed=True)
    return value or 1


@dataclass(frozen=True)
class Fingerprints:
    """Hashes of T texts and of their S sentences (pieces ending at ``. ! ? ;``), letters and digits only.

    ``text_hash`` [T] int64 (0: a text without letters or digits); ``sentence_hash``,
    ``sentence_chars`` (letters and digits in the sentence), ``sentence_owner`` (text index): [S] int64.
    """

    text_hash: np.ndarray
    sentence_hash: np.ndarray
    sentence_chars: np.ndarray
    sentence_owner: np.ndarray

    @classmethod
    def of(cls, texts: Iterable[Sequence[str]]) -> Fingerprints:
        whole, hashes, chars, owners = [], [], [], []
        for owner, text in enumerate(texts):
            letters = _letters(text)
            whole.append(_hash(letters) if letters else 0)
            sentence: list[str] = []
            for word in (*text, "."):
                if word not in SENTENCE_END:
                    sentence.append(word)
                    continue
                piece = _letters(sentence)
                if piece:
                    hashes.append(_hash(piece))
                    chars.append(len(piece))
                    owners.append(owner)
                sentence = []
        as_int = lambda values: np.asarray(values, dtype=np.int64)  # noqa: E731
        return cls(as_int(whole), as_int(hashes), as_int(chars), as_int(owners))

    def __len__(self) -> int:
        return len(self.text_hash)

    def select(self, keep: np.ndarray) -> Fingerprints:
        """The fingerprints of the texts where ``keep`` [T] is true, renumbered."""
        new_index = np.cumsum(keep) - 1
        rows = keep[self.sentence_owner] if len(self.sentence_owner) else np.zeros(0, bool)
        return Fingerprints(self.text_hash[keep], self.sentence_hash[rows], self.sentence_chars[rows], new_index[self.sentence_owner[rows]])

    def tensors(self) -> dict[str, np.ndarray]:
        return dict(zip(FINGERPRINT_TENSORS, (self.text_hash, self.sentence_hash, self.sentence_chars, self.sentence_owner)))

    @classmethod
    def read(cls, path: Path) -> Fingerprints:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as handle:
            return cls(*(handle.get_tensor(name) for name in FINGERPRINT_TENSORS))


@dataclass(frozen=True)
class HeldOut:
    """The texts a language model must not have been trained on, as sorted unique hashes."""

    text_hash: np.ndarray
    sentence_hash: np.ndarray

    @classmethod
    def of(cls, texts: Iterable[Sequence[str]]) -> HeldOut:
        prints = Fingerprints.of(texts)
        return cls(np.unique(prints.text_hash[prints.text_hash != 0]), np.unique(prints.sentence_hash))

    def covers(self, corpus: Fingerprints, share: float = HELD_OUT_SHARE) -> np.ndarray:
        """[T] bool: the corpus text equals a held-out text, or >= ``share`` of its characters lie in held-out sentences."""
        equal = (corpus.text_hash != 0) & np.isin(corpus.text_hash, self.text_hash)
        hit = np.isin(corpus.sentence_hash, self.sentence_hash)
        total = np.bincount(corpus.sentence_owner, weights=corpus.sentence_chars, minlength=len(corpus))
        held = np.bincount(corpus.sentence_owner, weights=corpus.sentence_chars * hit, minlength=len(corpus))
        return equal | ((total > 0) & (held >= share * total))

    def digest(self) -> str:
        return hashlib.sha256(self.text_hash.tobytes() + b"|" + self.sentence_hash.tobytes()).hexdigest()


# -- the corpus: which files, read how ----------------------------------------------------------------


@dataclass(frozen=True)
class CorpusFile:
    """One file of the corpus (or of the held-out texts): a registered data set's split file or a user's text file."""

    path: Path
    label: str  # "imdb/train.jsonl.gz", or "attack.lm_corpora[0]: <path>"
    dataset: str | None  # registered data set name; None for a user's text file
    sha256: str

    @classmethod
    def at(cls, path: Path, label: str, dataset: str | None) -> CorpusFile:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        return cls(path, label, dataset, digest.hexdigest())

    def texts(self) -> list[Text]:
        """Every text of the file: each segment of each example (premise and hypothesis are two texts)."""
        if self.dataset is None:
            return self._lines()
        return [segment for example in read_file(self.path, REGISTRY[self.dataset].task) for segment in example.segments]

    def corpus_texts(self) -> list[Text]:
        """The texts as the corpus takes them: without sub-phrases (SST-2), de-duplicated (other data sets), as given (user files)."""
        texts = self.texts()
        if self.dataset is None:
            return texts
        if self.dataset in PHRASE_LEVEL:
            return drop_subphrases(texts)
        return list(dict.fromkeys(texts))

    def _lines(self) -> list[Text]:
        opener = gzip.open if self.path.suffix == ".gz" else open
        texts = []
        with opener(self.path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise ValueError(f"{self.label}, line {number}: not UTF-8 text ({err.reason} at byte {err.start})") from None
                text = tuple(words(line))
                if text:
                    texts.append(text)
        return texts


@dataclass(frozen=True)
class CorpusPlan:
    """The files of a broad corpus: sources (in order), held-out test files, and what was left out and why."""

    sources: tuple[CorpusFile, ...]
    held_out: tuple[CorpusFile, ...]
    skipped: tuple[str, ...]

    def key(self, order: int) -> str:
        """SHA-256 (hex) of everything that decides the model: order, versions, sources in order, held-out files."""
        payload = {
            "recipe": CORPUS_RECIPE, "pretokenizer": PRETOKENIZER_VERSION, "order": order, "held_out_share": HELD_OUT_SHARE,
            "sources": [[s.dataset or "text", s.sha256] for s in self.sources],
            "held_out": sorted([h.dataset or "text", h.sha256] for h in self.held_out),
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()


def plan_corpus(data_dir: str | Path | None, user_files: Sequence[str] = ()) -> CorpusPlan:
    """The broad corpus's files under ``data_dir`` (no environment lookup here: the caller resolves it) and the user's.

    Raises FileNotFoundError naming ``attack.lm_corpora[i]`` for a user file that does not exist.
    """
    sources, held_out, skipped = [], [], []
    root = Path(data_dir).expanduser() if data_dir else None
    for name in sorted(REGISTRY) if root is not None else ():
        info = REGISTRY[name]
        train_split, _, test_split = info.local_roles
        train_file = info.local_files[train_split]
        test_file = info.local_files.get(test_split) if test_split else None
        if test_file is not None and (root / test_file).is_file():
            held_out.append(CorpusFile.at(root / test_file, test_file, name))
        if not (root / train_file).is_file():
            continue
        if test_file is None or test_file == train_file:
            skipped.append(f"{train_file} ({name}'s test split is carved from it)")
            continue
        sources.append(CorpusFile.at(root / train_file, train_file, name))
    for i, name in enumerate(user_files):
        path = Path(name).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"attack.lm_corpora[{i}]: no such file: {path}")
        sources.append(CorpusFile.at(path, f"attack.lm_corpora[{i}]: {path}", None))
    return CorpusPlan(tuple(sources), tuple(held_out), tuple(skipped))


def build_corpus(plan: CorpusPlan, extra_held_out: Iterable[Sequence[str]] = ()) -> tuple[list[Text], Fingerprints, dict]:
    """Read the sources, drop (mostly) held-out texts; returns the texts, their fingerprints, per-source counts."""
    texts, spans = [], []
    for source in plan.sources:
        read = source.corpus_texts()
        spans.append((source.label, len(texts), len(texts) + len(read)))
        texts.extend(read)
    held = HeldOut.of([t for h in plan.held_out for t in h.texts()] + [tuple(t) for t in extra_held_out])
    prints = Fingerprints.of(texts)
    keep = ~held.covers(prints)
    lengths = np.asarray([len(t) for t in texts], dtype=np.int64)
    per_source = {label: {"texts": int(keep[a:b].sum()), "words": int(lengths[a:b][keep[a:b]].sum()), "dropped_as_test": int((~keep[a:b]).sum())}
                  for label, a, b in spans}
    return [t for t, k in zip(texts, keep) if k], prints.select(keep), per_source


# -- the cached model ----------------------------------------------------------------------------------


def broad_ngram_lm(plan: CorpusPlan, order: int = 3, attacked_texts: Iterable[Sequence[str]] = (),
                   cache_dir: str | Path | None = None, log: Callable[[str], None] | None = None) -> tuple[NGramLM, dict]:
    """The Kneser-Ney model of the broad corpus, from the cache or trained once and cached.

    ``attacked_texts``: the texts an attack will perturb; when the corpus holds
    (mostly) any of them, a variant without them is used (and cached under its
    own key). Returns the model and a JSON-able record: ``lm`` ("ngram-broad"),
    ``key``, ``corpus_key`` (of the plan, before any variant), ``variant_of``,
    ``path``, ``cached``, counts per source, vocabulary. Raises ValueError when
    the plan has no source, or a file cannot be read (naming file and line).
    """
    if not plan.sources:
        raise ValueError("the broad n-gram LM has no corpus: no registered data set in the data directory and no attack.lm_corpora")
    log = log or (lambda message: None)
    cache = lm_cache_dir(cache_dir)
    corpus_key = plan.key(order)
    lm, record, prints = _cached_or_trained(cache, corpus_key, order, lambda: build_corpus(plan), plan, None, log)
    attacked = [tuple(t) for t in attacked_texts]
    if attacked:
        held = HeldOut.of(attacked)
        seen = held.covers(prints)
        if seen.any():
            key = hashlib.sha256(f"{corpus_key}|without|{held.digest()}".encode()).hexdigest()
            log(f"{int(seen.sum())} texts of the broad LM's corpus are (mostly) texts of the attacked split: using a variant without the split")
            lm, record, _ = _cached_or_trained(cache, key, order, lambda: build_corpus(plan, attacked), plan, corpus_key, log)
    return lm, record


def _cached_or_trained(cache: Path, key: str, order: int, build: Callable[[], tuple[list[Text], Fingerprints, dict]],
                       plan: CorpusPlan, variant_of: str | None, log: Callable[[str], None]) -> tuple[NGramLM, dict, Fingerprints]:
    path = cache / f"ngram{order}-{key[:24]}.safetensors"
    if path.is_file():
        try:
            lm = NGramLM.load(path)
            record = json.loads(lm.metadata["corpus"])
            if record.get("key") == key:
                return lm, record | {"path": str(path), "cached": True}, Fingerprints.read(path)
            log(f"{path}: holds another corpus's model (key {record.get('key')}); training again")
        except (ValueError, KeyError, OSError, json.JSONDecodeError) as err:
            log(f"{path}: unreadable cached language model ({err}); training again")
    start = time.perf_counter()
    texts, prints, per_source = build()
    if not texts:
        raise ValueError(f"the broad n-gram LM's corpus is empty after holding out test texts (sources: {[s.label for s in plan.sources]})")
    lm = NGramLM.train(texts, order=order)
    record = {
        "lm": "ngram-broad", "key": key, "corpus_key": variant_of or key, "variant_of": variant_of, "order": order,
        "texts": len(texts), "words": int(sum(len(t) for t in texts)), "vocabulary": lm.size,
        "dropped_as_test": sum(s["dropped_as_test"] for s in per_source.values()),
        "sources": per_source, "held_out": [h.label for h in plan.held_out], "skipped": list(plan.skipped),
        "train_s": round(time.perf_counter() - start, 1),
    }
    cache.mkdir(parents=True, exist_ok=True)
    temporary = cache / f".{path.name}.{os.getpid()}.tmp"
    try:  # write, then rename: a reader sees the whole model or none
        lm.save(temporary, metadata={"corpus": json.dumps(record)}, extra=prints.tensors())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    lm.metadata = {"corpus": json.dumps(record)}
    return lm, record | {"path": str(path), "cached": False}, prints


def describe(record: dict) -> str:
    """One line for the log: which model, its key, its corpus."""
    if record.get("lm") != "ngram-broad":
        return ", ".join(f"{k}={v}" for k, v in record.items())
    sources = "; ".join(f"{label}: {s['texts']} texts" + (f" ({s['dropped_as_test']} held out as test texts)" if s["dropped_as_test"] else "")
                        for label, s in record["sources"].items())
    variant = f", variant of {record['variant_of'][:12]} without the attacked split" if record.get("variant_of") else ""
    origin = "from the cache" if record.get("cached") else f"trained in {record['train_s']} s"
    return (f"ngram-broad (order {record['order']}, key {record['key']}{variant}; {record['texts']} texts, {record['words']} words, "
            f"vocabulary {record['vocabulary']}; {sources}; left out: {', '.join(record['skipped']) or 'nothing'}) {origin} -> {record['path']}")
