"""The run directory: ``runs/<run-id>/`` written to a temporary name and renamed when complete.

Layout::

    runs/<run-id>/
        manifest.json      spec, spec_sha256, seed, n_patients, package versions, timings,
                           arms, failed compounds and why, executor
        patients.parquet   one row per patient x arm
        bands.parquet      percentile bands per arm, quantity and output time
        summary.parquet    one row per arm (compound x regimen)

A directory is complete when ``manifest.json`` exists in a directory whose name does not start
with ``.`` (temporary directories are ``.<run-id>.partial-<host>-<pid>-<random>``); a crash
leaves only the temporary name, which the next run in the same folder on that host removes
once its process is gone (:func:`sweep_stale_partials`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from insilico.errors import SpecError

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

FILES = ("patients.parquet", "bands.parquet", "summary.parquet")
PACKAGES = (
    "insilico",
    "numpy",
    "scipy",
    "numba",
    "pandas",
    "pyarrow",
    "dask",
    "distributed",
    "pydantic",
    "rdkit",
)


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a run depends on."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    if out["insilico"] == "not installed":
        import insilico

        out["insilico"] = insilico.__version__
    return out


def new_run_id(
    name: str,
    spec_sha256: str,
    root: Path,
    *,
    seed: int | None = None,
    n_patients: int | None = None,
) -> str:
    """``<UTC yyyymmdd-HHMMSS>-<name>-<hash8>``, suffixed ``-2``, ``-3`` ... if taken.

    ``hash8`` starts the SHA-256 of the spec; a ``seed`` or ``n_patients`` that overrides the
    spec's is hashed with it, so runs of one protocol with other settings get other ids. Two
    processes that still pick the same id do not collide: :meth:`RunWriter.finish` takes the
    next free suffix.
    """
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    digest = spec_sha256
    if seed is not None or n_patients is not None:
        salted = f"{spec_sha256}|seed={seed}|n_patients={n_patients}"
        digest = hashlib.sha256(salted.encode()).hexdigest()
    base = f"{stamp}-{safe}-{digest[:8]}"
    run_id, k = base, 1
    while (root / run_id).exists():
        k += 1
        run_id = f"{base}-{k}"
    return run_id


def _rename_free(tmp: Path, root: Path, run_id: str, write_manifest) -> tuple[str, Path]:
    """Rename ``tmp`` to ``root/run_id`` or, if another process took that name meanwhile, to
    the first free ``run_id-2``, ``run_id-3`` ... (``write_manifest(run_id)`` rewrites the
    manifest for the name taken). Never replaces a run directory."""
    base, k = run_id, 1
    while True:
        final = root / run_id
        if not final.exists():
            try:
                os.rename(tmp, final)  # fails on a non-empty directory of that name
                return run_id, final
            except OSError:
                if not final.exists():
                    raise
        k += 1
        run_id = f"{base}-{k}"
        write_manifest(run_id)


def write_run(
    root: str | Path,
    run_id: str,
    manifest: dict,
    patients: pd.DataFrame,
    bands: pd.DataFrame,
    summary: pd.DataFrame,
) -> Path:
    """Write a complete run directory atomically (temporary name, then rename)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / run_id
    if final.exists():
        raise SpecError("run_id", run_id, "a run id that does not exist yet")
    sweep_stale_partials(root)
    tmp = _partial_path(root, run_id)
    try:
        tmp.mkdir()
        patients.to_parquet(tmp / "patients.parquet", index=False)
        bands.to_parquet(tmp / "bands.parquet", index=False)
        summary.to_parquet(tmp / "summary.parquet", index=False)
        _write_manifest(tmp, manifest, run_id)
        _, final = _rename_free(tmp, root, run_id, lambda rid: _write_manifest(tmp, manifest, rid))
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _host() -> str:
    """This host's name as it may appear in a directory name."""
    return re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname()) or "host"


def _partial_path(root: Path, run_id: str) -> Path:
    return root / f".{run_id}.partial-{_host()}-{os.getpid()}-{secrets.token_hex(4)}"


_PARTIAL = re.compile(r"^\..+\.partial-(?P<host>[A-Za-z0-9_]+)-(?P<pid>[0-9]+)-[0-9a-f]{8}$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def sweep_stale_partials(root: str | Path) -> list[Path]:
    """Remove the temporary directories of runs that died under ``root``: those written by
    a process of this host that no longer exists (a folder shared by several hosts keeps the
    others' until their own next run). Returns what was removed."""
    removed: list[Path] = []
    root = Path(root)
    if not root.is_dir():
        return removed
    host = _host()
    for path in root.iterdir():
        m = _PARTIAL.match(path.name)
        if m is None or m["host"] != host or _alive(int(m["pid"])) or path.is_symlink():
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _write_manifest(directory: Path, manifest: dict, run_id: str) -> None:
    manifest = {**manifest, "run_id": run_id, "files": list(FILES)}
    (directory / "manifest.json").write_text(
        json.dumps(manifest, indent=2, sort_keys=True, default=str), encoding="utf-8"
    )


class RunWriter:
    """Write a run directory incrementally: patients streamed to Parquet in plan order.

    Everything goes to ``.<run-id>.partial-<pid>-<random>`` under ``root``; :meth:`finish`
    writes the other files and renames the directory; :meth:`abort` (or leaving a ``with``
    block with an exception) deletes it. Memory: one task's rows at a time.
    """

    def __init__(self, root: str | Path, run_id: str):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.run_id = run_id
        self.final = self.root / run_id
        if self.final.exists():
            raise SpecError("run_id", run_id, "a run id that does not exist yet")
        sweep_stale_partials(self.root)
        self.tmp = _partial_path(self.root, run_id)
        self.tmp.mkdir()
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None

    def write_patients(self, rows: pd.DataFrame) -> None:
        """Append rows (same columns and types every time) to patients.parquet."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(rows, preserve_index=False, schema=self._schema)
        if self._writer is None:
            self._schema = table.schema
            self._writer = pq.ParquetWriter(self.tmp / "patients.parquet", self._schema)
        self._writer.write_table(table)

    def finish(self, manifest: dict, bands: pd.DataFrame, summary: pd.DataFrame) -> Path:
        """Write bands, summary and manifest, then rename to the final name (the next free
        ``-2``, ``-3`` ... suffix if another process finished a run of that id meanwhile)."""
        if self._writer is None:
            raise RuntimeError("no patients written")
        self._writer.close()
        self._writer = None
        bands.to_parquet(self.tmp / "bands.parquet", index=False)
        summary.to_parquet(self.tmp / "summary.parquet", index=False)
        _write_manifest(self.tmp, manifest, self.run_id)
        self.run_id, self.final = _rename_free(
            self.tmp, self.root, self.run_id, lambda rid: _write_manifest(self.tmp, manifest, rid)
        )
        return self.final

    def abort(self) -> None:
        """Delete the temporary directory."""
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:  # noqa: BLE001 - best effort while cleaning up
                pass
            self._writer = None
        if self.tmp.exists():
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None or self.tmp.exists():
            self.abort()


@dataclass
class Run:
    """A run directory read back."""

    path: Path
    manifest: dict
    summary: pd.DataFrame
    bands: pd.DataFrame

    def patients(self) -> pd.DataFrame:
        """Per-patient rows (read on demand: may be large)."""
        return pd.read_parquet(self.path / "patients.parquet")


def is_complete(path: Path) -> bool:
    """A finished run directory (not a temporary one, manifest present)."""
    return path.is_dir() and not path.name.startswith(".") and (path / "manifest.json").is_file()


def resolve_run(run: str | Path, root: str | Path = "runs") -> Path:
    """A run path from a path, a run id, or a unique prefix of a run id under ``root``."""
    p = Path(run)
    if is_complete(p):
        return p
    root = Path(root)
    if is_complete(root / str(run)):
        return root / str(run)
    if not root.is_dir():
        raise SpecError("--root", str(root), "an existing directory of runs")
    prefix = str(run)
    if not prefix:
        raise SpecError("run", prefix, "a run directory, run id or unique prefix of one")
    # a literal prefix: '*', '?' and '[' in a run argument are characters, never a pattern
    matches = [q for q in sorted(root.iterdir()) if q.name.startswith(prefix) and is_complete(q)]
    if len(matches) == 1:
        return matches[0]
    allowed = "a run directory or run id" + (
        f" (ambiguous: {[m.name for m in matches]})" if matches else f" under {root}"
    )
    raise SpecError("run", str(run), allowed)


def read_run(run: str | Path, root: str | Path = "runs") -> Run:
    """Read a run's manifest, summary and bands."""
    path = resolve_run(run, root)
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    return Run(
        path,
        manifest,
        pd.read_parquet(path / "summary.parquet"),
        pd.read_parquet(path / "bands.parquet"),
    )


def list_runs(root: str | Path = "runs") -> pd.DataFrame:
    """Complete runs under ``root``, newest first: run_id, name, created, n_patients, arms,
    failed compounds, wall time. A symlink to a run elsewhere is not listed (readers open
    only runs inside ``root``: :func:`insilico.results.access.safe_run_path`)."""
    root = Path(root)
    rows = []
    if root.is_dir():
        base = root.resolve()
        for p in root.iterdir():
            if p.resolve().parent != base or not is_complete(p):
                continue
            try:
                m = json.loads((p / "manifest.json").read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue
            rows.append(
                {
                    "run_id": p.name,
                    "name": m.get("name", ""),
                    "created_utc": m.get("created_utc", ""),
                    "n_patients": m.get("n_patients"),
                    "n_arms": len(m.get("arms", [])),
                    "n_failed": len(m.get("failed_compounds", [])),
                    "wall_s": m.get("timings_s", {}).get("total"),
                    "path": str(p),
                }
            )
    cols = ["run_id", "name", "created_utc", "n_patients", "n_arms", "n_failed", "wall_s", "path"]
    df = pd.DataFrame(rows, columns=cols)
    return df.sort_values(["created_utc", "run_id"], ascending=False).reset_index(drop=True)
