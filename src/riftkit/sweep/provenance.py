"""What produced a number: the riftkit commit, and digests of the code that trains and attacks.

A sweep row is *stale* when the code that computed it has changed since: its
``run.json`` keeps the digest of the training code (and each attack folder that of
the attack code) it ran with, and the collector compares them with today's.
The digests cover source files only, byte for byte, so any edit (a refactor
too) marks rows stale: the conservative reading, and the user decides; to decide,
:func:`changed_files` names the files that changed since the run's commit.

A change shown to compute the same results (a refactor: a run retrained bit-identically and
an attack re-run identically per example, on the changed code) is recorded in
``equivalent_code.json`` beside this file: today's digests, the digests they compute the same
as, that code's commit and the evidence. :func:`current_code` then counts runs of either code
as current, and names the files changed between a stale run's commit and the equivalent
commit, so that tables rebuilt after a verified refactor are byte-identical.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent
ROOT = PACKAGE.parent.parent  # the checkout: src/riftkit/ lies below it
# What decides a trained model: data, models, hull and substitution sets, objectives, the loop.
TRAINING_CODE = ("data", "models", "substitutions", "objectives", "training")
# What decides an attack's outcome on a given model.
ATTACK_CODE = ("data", "models", "substitutions", "attacks")


def code_digest(packages: tuple[str, ...]) -> str:
    """SHA-256 over the ``.py`` files of these riftkit sub-packages (path and bytes, sorted by path)."""
    digest = hashlib.sha256()
    for package in packages:
        for path in sorted((PACKAGE / package).rglob("*.py")):
            digest.update(str(path.relative_to(PACKAGE)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


EQUIVALENCES = Path(__file__).resolve().parent / "equivalent_code.json"


@dataclass(frozen=True)
class CodeState:
    """The code a table is judged against: digests whose runs count as current, and the commit whose code today's
    is verified to compute the same as (None: today's working tree, no equivalence recorded)."""

    training: frozenset[str]
    attack: frozenset[str]
    reference_commit: str | None = None
    evidence: tuple[str, ...] = field(default=())


def current_code(path: Path = EQUIVALENCES) -> CodeState:
    """Today's digests plus, through the recorded equivalences (followed back in a chain), those of older code
    shown to compute the same results. A record applies only to the exact pair of digests it names."""
    training, attack = code_digest(TRAINING_CODE), code_digest(ATTACK_CODE)
    records = json.loads(path.read_text(encoding="utf-8"))["equivalences"] if path.is_file() else []
    trainings, attacks, evidence, reference = {training}, {attack}, [], None
    pair = (training, attack)
    for _ in range(len(records)):
        record = next((r for r in records if (r["code"]["training"], r["code"]["attack"]) == pair), None)
        if record is None:
            break
        pair = (record["same_as"]["training"], record["same_as"]["attack"])
        trainings.add(pair[0])
        attacks.add(pair[1])
        reference = record["same_as"]["commit"]
        evidence.append(record["evidence"])
    return CodeState(frozenset(trainings), frozenset(attacks), reference, tuple(evidence))


def git_commit() -> dict:
    """``{"commit": sha or None, "dirty": bool or None}`` of the checkout riftkit runs from."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=10).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "src"], cwd=ROOT, capture_output=True,
                                text=True, check=True, timeout=10).stdout
        return {"commit": sha, "dirty": bool(status.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def changed_files(commit: str | None, packages: tuple[str, ...], root: Path = ROOT, until: str | None = None) -> list[str] | None:
    """The ``.py`` files of these sub-packages that differ between ``commit`` and the working tree (or the commit
    ``until``: the code today's is verified equal to), as paths below ``src/riftkit/`` (``["models/backends.py"]``);
    None when git cannot tell (no commit recorded, a commit this clone does not have, no git)."""
    if not commit:
        return None
    paths = [f"src/riftkit/{package}" for package in packages]
    try:
        out = subprocess.run(["git", "diff", "--name-only", commit, *([until] if until else []), "--", *paths], cwd=root,
                             capture_output=True, text=True, check=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return sorted(line.removeprefix("src/riftkit/") for line in out.splitlines() if line.endswith(".py"))
