"""Parse and standardize structures (SMILES, SDF) with RDKit.

Standardization, in this order (it matches how the shared Lombardo 2018 training set was
curated, so predictions see the same kind of structure they were trained on):

1. parse (SMILES or mol block), sanitize;
2. keep the largest organic fragment (strip counter-ions, salts and solvents:
   ``rdMolStandardize.LargestFragmentChooser(preferOrganic=True)``);
3. neutralize (``rdMolStandardize.Uncharger``: protonate/deprotonate to the neutral form
   where a neutral form exists; permanent charges such as quaternary ammonium stay);
4. canonical isomeric SMILES (stereo kept) and standard InChIKey.

A structure that cannot be used gets a reason instead of an exception in batch functions:
``empty SMILES``, ``unparsable SMILES at position N: ...``, ``invalid chemistry: ...``,
``no carbon atoms``, ``more than N heavy atoms``. RDKit's own logging is silenced and its
error messages are captured and turned into these reasons.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from rdkit import Chem, RDLogger, rdBase
from rdkit.Chem.MolStandardize import rdMolStandardize

RDLogger.DisableLog("rdApp.*")  # type: ignore[attr-defined]  # rdkit's stubs omit it

MAX_HEAVY_ATOMS = 150
"""Default size limit: beyond this a molecule is outside what the small-molecule PK models
cover (cyclosporine, one of the largest drugs in the Lombardo set, has 85 heavy atoms)."""

_TIMESTAMP = re.compile(r"^\[\d\d:\d\d:\d\d\]\s*")
_POSITION = re.compile(r"around position (\d+)")


@dataclass(frozen=True)
class StandardizedMolecule:
    """Result of standardizing one structure.

    Attributes
    ----------
    smiles : str
        Canonical isomeric SMILES of the standardized parent ("" when invalid).
    inchikey : str
        Standard InChIKey of the standardized parent ("" when invalid).
    valid : bool
        Whether the molecule can be used.
    error : str
        Reason it cannot be used; "" when valid.
    """

    smiles: str
    inchikey: str
    valid: bool
    error: str


_NOISE = re.compile(
    r"^(\*+|-+|Stacktrace:|\d+# .*|Post-condition Violation|Pre-condition Violation|"
    r"Invariant Violation|Violation occurred on line.*|Failed Expression:.*)$"
)


def _clean_log(text: str) -> list[str]:
    """Meaningful lines of an RDKit log capture (no timestamps, banners or stack traces)."""
    lines = [_TIMESTAMP.sub("", ln).strip() for ln in text.splitlines()]
    return [ln for ln in lines if ln and not _NOISE.match(ln)]


def _smiles_error(smiles: str, log: str) -> str:
    """Turn RDKit's captured log for a failed SMILES parse into a one-line reason."""
    lines = _clean_log(log)
    pos = None
    for ln in lines:
        m = _POSITION.search(ln)
        if m:
            pos = int(m.group(1))
            break
    detail = ""
    for ln in lines:
        if ln.startswith("SMILES Parse Error:") and "Failed parsing" not in ln:
            if "check for mistakes" in ln:
                continue
            detail = ln.removeprefix("SMILES Parse Error:").strip()
            detail = re.sub(r"\s*(while parsing|for input):.*$", "", detail)
            break
    if pos is not None:
        return f"unparsable SMILES at position {pos}: {detail or 'syntax error'}"
    if detail:
        return f"unparsable SMILES: {detail}"
    # Parsed but failed sanitization (valence, kekulization)
    chem = next((ln for ln in lines if ln), "sanitization failed")
    return f"invalid chemistry: {chem}"


def mol_from_smiles(smiles: object) -> tuple[Chem.Mol | None, str]:
    """Parse a SMILES string; return ``(mol, "")`` or ``(None, reason)``.

    Parameters
    ----------
    smiles : object
        SMILES text. ``None``, NaN and blank strings give ``"empty SMILES"``.
    """
    if smiles is None or (isinstance(smiles, float) and smiles != smiles):
        return None, "empty SMILES"
    text = str(smiles).strip()
    if not text:
        return None, "empty SMILES"
    with rdBase.CaptureErrorLog() as capture:
        mol = Chem.MolFromSmiles(text)
    if mol is None:
        return None, _smiles_error(text, capture.messages)
    return mol, ""


def mol_from_molblock(block: str) -> tuple[Chem.Mol | None, str]:
    """Parse one MDL mol block (V2000/V3000); return ``(mol, "")`` or ``(None, reason)``."""
    if not block.strip():
        return None, "empty mol block"
    with rdBase.CaptureErrorLog() as capture:
        mol = Chem.MolFromMolBlock(block, sanitize=True, removeHs=True)
    if mol is None:
        lines = _clean_log(capture.messages)
        return None, "unreadable mol block: " + (lines[0] if lines else "parse failed")
    return mol, ""


def standardize_mol(
    mol: Chem.Mol, *, max_heavy_atoms: int = MAX_HEAVY_ATOMS
) -> tuple[Chem.Mol | None, str]:
    """Largest organic fragment, neutralized; checks carbon and size.

    The input is not modified (a copy is standardized).

    Returns
    -------
    (mol, error) : tuple
        The standardized parent and "" or ``(None, reason)``.
    """
    if mol.GetNumAtoms() == 0:
        return None, "empty SMILES"
    with rdBase.CaptureErrorLog() as capture:
        try:
            work = Chem.Mol(mol)
            chooser = rdMolStandardize.LargestFragmentChooser(preferOrganic=True)
            work = chooser.choose(work)
            work = rdMolStandardize.Uncharger().uncharge(work)
            Chem.SanitizeMol(work)
        except Exception as exc:  # RDKit raises several exception types
            lines = _clean_log(capture.messages)
            return None, f"standardization failed: {lines[0] if lines else exc}"
    if not any(a.GetAtomicNum() == 6 for a in work.GetAtoms()):
        return None, "no carbon atoms"
    n_heavy = work.GetNumHeavyAtoms()
    if n_heavy > max_heavy_atoms:
        return None, f"more than {max_heavy_atoms} heavy atoms ({n_heavy})"
    return work, ""


def _finish(mol: Chem.Mol | None, error: str, max_heavy_atoms: int) -> StandardizedMolecule:
    if mol is None:
        return StandardizedMolecule("", "", False, error)
    std, error = standardize_mol(mol, max_heavy_atoms=max_heavy_atoms)
    if std is None:
        return StandardizedMolecule("", "", False, error)
    smiles = Chem.MolToSmiles(std, isomericSmiles=True)
    with rdBase.CaptureErrorLog():
        inchikey = Chem.MolToInchiKey(std) or ""
    return StandardizedMolecule(smiles, inchikey, True, "")


def standardize_smiles(
    smiles: object, *, max_heavy_atoms: int = MAX_HEAVY_ATOMS
) -> StandardizedMolecule:
    """Standardize one SMILES; never raises for bad input (see ``valid``/``error``).

    Examples
    --------
    >>> standardize_smiles("CC(=O)Oc1ccccc1C(=O)[O-].[Na+]").smiles
    'CC(=O)Oc1ccccc1C(=O)O'
    """
    mol, error = mol_from_smiles(smiles)
    return _finish(mol, error, max_heavy_atoms)


def standardize_smiles_batch(
    smiles: Iterable[object], *, max_heavy_atoms: int = MAX_HEAVY_ATOMS
) -> pd.DataFrame:
    """Standardize many SMILES.

    Returns
    -------
    pandas.DataFrame
        One row per input, in order: ``input_smiles``, ``smiles`` (standardized, "" when
        invalid), ``inchikey``, ``valid`` (bool), ``error`` (str, "" when fine).
    """
    inputs = list(smiles)
    rows = [standardize_smiles(s, max_heavy_atoms=max_heavy_atoms) for s in inputs]
    return pd.DataFrame(
        {
            "input_smiles": ["" if s is None else str(s) for s in inputs],
            "smiles": [r.smiles for r in rows],
            "inchikey": [r.inchikey for r in rows],
            "valid": pd.array([r.valid for r in rows], dtype=bool),
            "error": [r.error for r in rows],
        }
    )


def _sdf_records(text: str) -> list[str]:
    parts = re.split(r"^\$\$\$\$\s*$", text, flags=re.MULTILINE)
    records = [p.lstrip("\r\n") for p in parts]
    # the text after the last $$$$ is only whitespace in a well-formed file
    return [r for r in records if r.strip()]


def _sdf_properties(record: str) -> tuple[str, dict[str, str]]:
    """Title line and data items of one SDF record, read as text (works for broken mols)."""
    lines = record.splitlines()
    title = lines[0].strip() if lines else ""
    props: dict[str, str] = {}
    try:
        end = next(i for i, ln in enumerate(lines) if ln.startswith("M  END"))
    except StopIteration:
        return title, props
    i = end + 1
    while i < len(lines):
        m = re.match(r"^>.*<([^>]+)>", lines[i])
        if m:
            name = m.group(1)
            values = []
            i += 1
            while i < len(lines) and lines[i].strip() != "":
                values.append(lines[i])
                i += 1
            props[name] = "\n".join(values).strip()
        i += 1
    return title, props


def read_sdf(path: str | Path, *, max_heavy_atoms: int = MAX_HEAVY_ATOMS) -> pd.DataFrame:
    """Read an SDF file record by record; a broken record does not stop the others.

    Returns
    -------
    pandas.DataFrame
        One row per record: ``record`` (0-based index), ``title`` (first line of the mol
        block), every SDF data item as a string column, ``input_smiles`` (SMILES of the
        parsed molecule before standardization, "" if unreadable), ``smiles``, ``inchikey``,
        ``valid``, ``error``.
    """
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    rows = []
    for k, record in enumerate(_sdf_records(text)):
        title, props = _sdf_properties(record)
        block = record.split("M  END")[0] + "M  END\n" if "M  END" in record else record
        mol, error = mol_from_molblock(block)
        std = _finish(mol, error, max_heavy_atoms)
        raw = Chem.MolToSmiles(mol) if mol is not None else ""
        rows.append(
            {
                "record": k,
                "title": title,
                **props,
                "input_smiles": raw,
                "smiles": std.smiles,
                "inchikey": std.inchikey,
                "valid": std.valid,
                "error": std.error,
            }
        )
    df = pd.DataFrame(rows)
    if df.empty:
        cols = ["record", "title", "input_smiles", "smiles", "inchikey", "valid", "error"]
        df = pd.DataFrame({c: [] for c in cols})
    df["valid"] = df["valid"].astype(bool)
    return df
