"""Handing freed heap memory back to the operating system during long attacks.

On Linux, glibc's malloc keeps memory that PyTorch has freed (the activations of
model calls of ever-changing shapes) in its arenas rather than returning it, so a
long attack's resident memory (RSS) climbs towards the largest working set it has
seen, arena by arena, although nothing is alive in it (pytorch/pytorch#27971 is
the same effect). ``malloc_trim(0)`` returns those free pages; the attacks' query
layer calls it every ``TRIM_EVERY`` model calls. Elsewhere (macOS, musl) it does nothing.
benchmarks/soak.py measures RSS and glibc's in-use heap over a 30-minute attack.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

TRIM_EVERY = 50  # model calls between trims: each call is >= ~0.1 s of model time, a trim a few ms


@functools.cache
def _libc():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    if libc is None or not hasattr(libc, "malloc_trim"):
        return None
    if hasattr(libc, "mallinfo2"):
        libc.mallinfo2.restype = _MallInfo2
    return libc


def release_free_memory() -> bool:
    """Return freed heap pages to the OS (glibc ``malloc_trim(0)``); False where there is no such call."""
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def heap_in_use() -> int | None:
    """Bytes the process's malloc heap has handed out and not freed (glibc ``mallinfo2``: uordblks + hblkhd), or None."""
    libc = _libc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        return None
    info = libc.mallinfo2()
    return int(info.uordblks + info.hblkhd)
