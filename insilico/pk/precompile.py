"""The linear kernel's first compile on two cores.

On a cold numba cache :func:`insilico.pk.kernel.linear_kernel` and the functions it calls
through function pointers (its layout's fused steps and :data:`insilico.pk.kernel.COLD_HELPERS`)
all need compiling. The kernel does not need them compiled to compile itself (it only knows
their signatures), so :func:`compile_kernel` starts a child process that compiles them into the
on-disk cache (``python -m insilico.pk.precompile``) while this process compiles the kernel;
afterwards this process loads them from the cache. The child starts with the functions the
kernel calls directly (:data:`insilico.pk.kernel.DIRECT_CALLEES`), so that the kernel's typing,
which reaches them a few seconds in, loads them from the cache too. The child compiles the same
functions with the same signatures and options, so the machine code is the same as compiled
here.

Nothing of this runs on a warm cache: whether the kernel's compilation is cached is read from
numba's cache index (no process is started then). When the child cannot start, fails, or
cannot write the cache, this process compiles what is missing itself, as it would without it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

#: The child's longest run (s) before it is stopped and this process compiles the rest itself.
CHILD_TIMEOUT_S = 600.0


def is_cached(dispatcher, sig: tuple) -> bool:
    """Whether numba's on-disk cache holds ``dispatcher`` compiled for ``sig`` (reads only the
    cache's index; True when that cannot be told, so that nothing more is started)."""
    try:
        cache = dispatcher._cache
        key = cache._index_key(sig, dispatcher.targetctx.codegen())
        if key in cache._cache_file._load_index():
            return True
        return not os.access(cache._cache_path, os.W_OK)
    except Exception:  # a cache without an index (caching off) or another numba version
        return True


def _start_child(plain: bool, steps: tuple) -> subprocess.Popen | None:
    """Start the child compiling the pointer-called functions, or None when it cannot."""
    names = [getattr(fn, "py_func", fn).__name__ for fn in steps]
    cmd = [sys.executable, "-m", __name__, "plain" if plain else "full", *names]
    # the same insilico as here, first on the path; numba's settings come with the environment
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    try:
        return subprocess.Popen(
            cmd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except (OSError, ValueError):
        return None


def _stop_child(child: subprocess.Popen | None, wait: bool) -> None:
    """Wait for the child (at most :data:`CHILD_TIMEOUT_S`) or stop it; never leaves it."""
    if child is None:
        return
    try:
        if wait:
            child.wait(timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pass
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def compile_kernel(kernel, sig: tuple, plain: bool, steps: tuple):
    """The compile result of ``kernel`` (a variant of :func:`insilico.pk.kernel.linear_kernel`)
    for ``sig``, its ``steps`` and cold helpers compiled as well; on a cold cache the latter in
    a child process meanwhile (see the module docstring)."""
    from insilico.pk.kernel import cold_helpers, quiet_function_tuples
    from insilico.pk.steps import STEP_SIGNATURE

    with quiet_function_tuples():
        child = None
        if not is_cached(kernel, sig):
            child = _start_child(plain, steps)
        done = False
        try:
            kernel.compile(sig)
            done = True
        finally:
            _stop_child(child, wait=done)
        for fn in steps:
            fn.compile(STEP_SIGNATURE)
        cold_helpers(plain)
    return kernel.overloads[sig]


def main(argv: list[str]) -> int:
    """The child: compile the kernel's direct callees, the fused steps named in ``argv[1:]``
    and the cold helpers of the variant ``argv[0]`` ("plain" or "full") into the cache. The
    direct callees come first: the kernel's typing reaches them after a few seconds."""
    from insilico.pk import _fused_generated
    from insilico.pk.kernel import DIRECT_CALLEES, N_DIRECT_PLAIN, cold_helpers
    from insilico.pk.steps import STEP_SIGNATURE

    plain = argv[0] == "plain"
    for fn, args in DIRECT_CALLEES[:N_DIRECT_PLAIN] if plain else DIRECT_CALLEES:
        fn.compile(args)
    for name in argv[1:]:
        getattr(_fused_generated, name).compile(STEP_SIGNATURE)
    cold_helpers(plain)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
