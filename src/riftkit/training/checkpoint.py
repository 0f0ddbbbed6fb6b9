"""One checkpoint bundle per save: everything a killed run needs to continue bit-identically.

Layout of ``<output_dir>/checkpoints/step-<N>/`` (N: optimiser steps done)::

    model.safetensors    the classifier's state dict (Mixout weights under their parametrized names)
    objective.pt         the objective's state: RIFT's projection heads and feature queue (ids included),
                         the adversary's round counter
    optimizer.pt         AdamW state and the learning-rate schedule
    rng.pt               torch CPU (and CUDA) generators, python ``random``, numpy
    trainer.json         TrainState, model selection, sampler position, the running means of the epoch
                         in progress, the metrics log's byte offset, elapsed time, a fingerprint of the data
    COMPLETE             written last: a folder without it is not a checkpoint

A checkpoint is written to ``checkpoints/.tmp-step-<N>/``, every file fsynced, then renamed to
``step-<N>`` (rename is atomic within a file system) and the parent fsynced: a kill at any
moment leaves either the new checkpoint complete or the previous one as the newest.

A damaged checkpoint (a weight file truncated after the fact) is named when loaded, and
:func:`latest_checkpoint` passes over it to the newest intact one.

The ``.pt`` files hold only tensors, numbers, strings, lists, tuples and dicts, and are read with
``torch.load(weights_only=True)``: no pickle code runs when a checkpoint is loaded.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..config import flatten_sections
from ..files import DamagedFileError, check_safetensors, writing

CHECKPOINT_DIR = "checkpoints"
COMPLETE = "COMPLETE"
_STEP = re.compile(r"^step-(\d+)$")


# -- random generators ------------------------------------------------------------------------
def rng_state() -> dict:
    """Every global random generator a training step may draw from."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_tuples(state["python"]))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["position"], n["has_gauss"], n["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


# -- save / load --------------------------------------------------------------------------------
def checkpoint_name(step: int) -> str:
    return f"step-{step}"


def save_checkpoint(folder: str | Path, bundle: dict) -> Path:
    """Write ``bundle`` atomically to ``folder`` (``.../checkpoints/step-<N>``).

    ``bundle`` keys: ``model`` (state dict), ``objective``, ``optimizer``, ``scheduler``, ``rng``
    (torch-saveable), ``trainer`` (JSON-serialisable).
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    temporary = folder.with_name(f".tmp-{folder.name}")
    shutil.rmtree(temporary, ignore_errors=True)
    kept = "the checkpoint being written is incomplete and ignored; the previous one is kept"
    writes = {
        # clones: safetensors refuses tensors that share storage, and the files must not alias live weights
        "model.safetensors": lambda path: save_file({k: v.detach().cpu().clone().contiguous() for k, v in bundle["model"].items()}, path),
        "objective.pt": lambda path: torch.save(bundle["objective"], path),
        "optimizer.pt": lambda path: torch.save({"optimizer": bundle["optimizer"], "scheduler": bundle["scheduler"]}, path),
        "rng.pt": lambda path: torch.save(bundle["rng"], path),
        "trainer.json": lambda path: path.write_text(json.dumps(bundle["trainer"], indent=1) + "\n", encoding="utf-8"),
        COMPLETE: lambda path: path.write_text(json.dumps({"step": bundle["trainer"]["state"]["step"]}) + "\n", encoding="utf-8"),
    }
    with writing(temporary, kept):
        temporary.mkdir()
    for name, write in writes.items():
        with writing(temporary / name, kept):
            write(temporary / name)
            _fsync(temporary / name)
    with writing(folder, kept):
        _fsync(temporary)
        if folder.exists():  # the same step saved again (a rerun): the new bundle replaces it
            shutil.rmtree(folder)
        os.replace(temporary, folder)
        _fsync(folder.parent)
    return folder


def load_checkpoint(folder: str | Path, device: str | torch.device = "cpu") -> dict:
    folder = Path(folder)
    if not (folder / COMPLETE).is_file():
        raise FileNotFoundError(f"{folder}: not a complete checkpoint ({COMPLETE} is missing)")
    check_safetensors(folder / "model.safetensors")
    optim = _load_pt(folder / "optimizer.pt", device)
    return {
        "model": load_file(folder / "model.safetensors", device=str(device)),
        "objective": _load_pt(folder / "objective.pt", device),
        "optimizer": optim["optimizer"],
        "scheduler": optim["scheduler"],
        "rng": _load_pt(folder / "rng.pt", "cpu"),
        "trainer": _load_json(folder / "trainer.json"),
        "folder": str(folder),
    }


def _load_pt(path: Path, device: str | torch.device) -> Any:
    # weights_only=True: our own files hold plain containers of tensors and numbers only
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # a truncated zip, a torn pickle stream: name the file
        raise DamagedFileError(path, err) from None


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DamagedFileError(path, err) from None


def checkpoint_problem(folder: str | Path) -> str | None:
    """Why ``folder`` cannot be resumed from (a missing, truncated or unreadable file), or None; reads no tensor."""
    folder = Path(folder)
    if not (folder / COMPLETE).is_file():
        return f"{COMPLETE} is missing"
    try:
        check_safetensors(folder / "model.safetensors")
        for name in ("objective.pt", "optimizer.pt", "rng.pt"):
            if not zipfile.is_zipfile(folder / name):  # torch.save writes a zip archive; a truncated one has no directory
                raise DamagedFileError(folder / name, "not a complete archive")
        _load_json(folder / "trainer.json")
    except (OSError, DamagedFileError) as err:
        return str(err)
    return None


def list_checkpoints(root: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints under ``root`` (``<output_dir>/checkpoints``), oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        match = _STEP.match(path.name)
        if match and path.is_dir() and (path / COMPLETE).is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(root: str | Path) -> Path | None:
    """The newest complete checkpoint that is intact; a damaged newer one is reported and passed over."""
    for _, path in reversed(list_checkpoints(root)):
        problem = checkpoint_problem(path)
        if problem is None:
            return path
        print(f"riftkit: passing over the damaged checkpoint {path}: {problem}", file=sys.stderr)
    return None


def prune_checkpoints(root: str | Path, keep: int) -> None:
    """Keep the newest ``keep`` complete checkpoints; drop older ones and leftovers of interrupted saves."""
    root = Path(root)
    found = list_checkpoints(root)
    for _, path in found[: max(len(found) - keep, 0)]:
        shutil.rmtree(path, ignore_errors=True)
    kept = {path for _, path in found[-keep:]} if keep > 0 else set()
    for path in root.iterdir() if root.is_dir() else ():
        if path.is_dir() and path not in kept and (path.name.startswith(".tmp-") or _STEP.match(path.name)):
            shutil.rmtree(path, ignore_errors=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- the run's configuration -----------------------------------------------------------------------
def config_changes(saved: dict, current: dict, ignored: tuple[str, ...] = ()) -> list[str]:
    """``key: old -> new`` for every dotted key whose value differs (a key only on one side counts), except
    ``ignored`` ones (the config's ``NOT_A_RESULT`` fields: ``riftkit.config.result_free_paths``)."""
    old, new = flatten_sections(saved), flatten_sections(current)
    changes = []
    for key in sorted(set(old) | set(new)):
        if key in ignored:
            continue
        missing = "<absent>"
        a, b = old.get(key, missing), new.get(key, missing)
        if a != b:
            changes.append(f"{key}: {a} -> {b}")
    return changes
