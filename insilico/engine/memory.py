"""Hand freed heap memory back to the operating system (glibc ``malloc_trim``).

The client receives every task's rows, streams them to Parquet and keeps a slim copy; the
full rows are freed, but glibc keeps freed chunks of its heaps (and of the extra arenas the
Dask communication threads use) mapped, so the process's resident memory grows with the
cohort although the live data does not. Measured for 1,000,000 patients x 2 arms: 888 MB
resident with 135 MB of kept rows; 563 MB after one ``malloc_trim(0)``. Trimming as the rows
stream keeps the peak near the live data.

On a C library without ``malloc_trim`` (macOS, musl) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.cache
def _malloc_trim():
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        fn = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


def release_free_memory() -> bool:
    """Return free heap pages to the OS; True if the C library could do it."""
    fn = _malloc_trim()
    if fn is None:
        return False
    fn(0)
    return True
