"""What produced a number: the riftkit commit, and digests of the code that trains and attacks.

A sweep row is *stale* when the code that computed it has changed since: its
``run.json`` keeps the digest of the training code (and each attack folder that of
the attack code) it ran with, and the collector compares them with today's.
The digests cover source files only, byte for byte, so any edit (a refactor
too) marks rows stale: the conservative reading, and the user decides; to decide,
:func:`changed_files` names the files that changed since the run's commit.
"""

from __future__ import annotations

import hashlib
import subprocess
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


def git_commit() -> dict:
    """``{"commit": sha or None, "dirty": bool or None}`` of the checkout riftkit runs from."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=10).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "src"], cwd=ROOT, capture_output=True,
                                text=True, check=True, timeout=10).stdout
        return {"commit": sha, "dirty": bool(status.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def changed_files(commit: str | None, packages: tuple[str, ...], root: Path = ROOT) -> list[str] | None:
    """The ``.py`` files of these sub-packages that differ between ``commit`` and the working tree, as paths
    below ``src/riftkit/`` (``["models/backends.py"]``); None when git cannot tell (no commit recorded, a
    commit this clone does not have, no git)."""
    if not commit:
        return None
    paths = [f"src/riftkit/{package}" for package in packages]
    try:
        out = subprocess.run(["git", "diff", "--name-only", commit, "--", *paths], cwd=root, capture_output=True, text=True,
                             check=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return sorted(line.removeprefix("src/riftkit/") for line in out.splitlines() if line.endswith(".py"))
