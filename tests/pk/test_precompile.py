"""The kernel's first compile on two cores (:mod:`insilico.pk.precompile`): the cache probe
that keeps a warm run from starting anything, and the child process never outliving it."""

import importlib
import subprocess
import sys

import numba as nb

from insilico.pk import precompile


def test_is_cached_reads_the_cache_index(tmp_path, monkeypatch):
    (tmp_path / "probe_mod.py").write_text(
        "import numba\n\n@numba.njit(cache=True)\ndef twice(x):\n    return 2 * x\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = importlib.import_module("probe_mod")
    sig = (nb.types.int64,)
    assert not precompile.is_cached(mod.twice, sig)
    mod.twice.compile(sig)
    assert precompile.is_cached(mod.twice, sig)
    assert not precompile.is_cached(mod.twice, (nb.types.float64,))


def test_is_cached_without_a_disk_cache():
    """Caching off: nothing to gain from a child, so nothing is started."""
    fn = nb.njit(lambda x: x + 1)
    assert precompile.is_cached(fn, (nb.types.int64,))


def test_stop_child_leaves_no_process():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    precompile._stop_child(child, wait=False)
    assert child.poll() is not None
    precompile._stop_child(None, wait=True)  # no child: nothing to do


def test_child_compiles_into_the_cache():
    """The child's entry point compiles the plain variant's helpers and the named steps."""
    from insilico.pk.kernel import COLD_HELPERS, N_COLD_PLAIN
    from insilico.pk.steps import STEP_SIGNATURE, step_function

    step = step_function(3, 0, False, irm=False, compiled=False)
    assert precompile.main(["plain", step.py_func.__name__]) == 0
    assert STEP_SIGNATURE.args in step.overloads
    for fn, sig in COLD_HELPERS[:N_COLD_PLAIN]:
        assert sig.args in fn.overloads
