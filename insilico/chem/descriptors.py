"""Curated molecular descriptors with units, ionization class, fingerprints, depictions.

Only a dozen named descriptors are computed (all 217 RDKit descriptors cost ~70x more and
most are redundant for PK). Every column has a unit or is dimensionless:

================  =========  ===================================================================
column            unit       meaning (RDKit function)
================  =========  ===================================================================
mw_g_per_mol      g/mol      average molecular weight, ``Descriptors.MolWt`` (not exact mass)
clogp             log10      Crippen octanol/water logP, ``Crippen.MolLogP`` (Wildman &
                             Crippen 1999, doi:10.1021/ci990307l)
tpsa_A2           Å²         topological polar surface area, N and O only, ``CalcTPSA`` (Ertl
                             2000, doi:10.1021/jm000942e)
hbd               count      H-bond donors (Lipinski: N-H and O-H), ``Lipinski.NumHDonors``
hba               count      H-bond acceptors (Lipinski: N and O), ``Lipinski.NumHAcceptors``
rotatable_bonds   count      ``CalcNumRotatableBonds`` (strict definition)
aromatic_rings    count      ``CalcNumAromaticRings``
fraction_csp3     0-1        fraction of sp3 carbons, ``CalcFractionCSP3``
formal_charge     e          net formal charge of the standardized (neutralized) parent
heavy_atoms       count      non-hydrogen atoms
ionization_class  -          ``acid``, ``base``, ``neutral``, ``zwitterion`` at pH 7.4 (below)
pka_acid_approx   pH units   approximate pKa of the strongest acidic group found, NaN if none
pka_base_approx   pH units   approximate pKa (of the conjugate acid) of the strongest basic group
================  =========  ===================================================================

Ionization class from SMARTS of ionizable groups, with typical pKa values (class averages,
not predictions for the molecule; e.g. Manallack 2007, Perspect Medicin Chem 1:25, and
standard tables). A group counts as ionized at pH 7.4 when its typical pKa is below 6.4
(acids) or above 8.4 (bases), i.e. more than 90 % ionized:

acids
    sulfonic/sulfuric/phosphoric/phosphonic acid (pKa ~1), carboxylic acid (~4.2),
    tetrazole (~4.9), acyl sulfonamide and sulfonylurea (~5.0)
bases
    amidine and guanidine, not acylated (~12), aliphatic amine whose nitrogen is bonded only
    to sp3 carbons and hydrogens (primary/secondary/tertiary, ~9.5), quaternary ammonium
    (permanent cation, reported as pKa 14)
not counted (mostly un-ionized at 7.4)
    phenols (~10), anilines and pyridines (~5), imidazoles (~7), amides, sulfonamides (~10),
    imides; morpholines and amines beta to strong electron-withdrawing groups (pKa 6-8) are
    counted as bases, a known over-call.

``zwitterion``: at least one acidic and one basic group. Known limits: pKa depends on
substituents (±1.5 units typical), so compounds near the 6.4/8.4 cut-offs may be misclassed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from rdkit import Chem
from rdkit.Chem import Crippen, Descriptors, Lipinski, rdFingerprintGenerator, rdMolDescriptors
from rdkit.Chem.Draw import rdMolDraw2D

from insilico.chem.standardize import mol_from_smiles, standardize_smiles_batch

DESCRIPTOR_COLUMNS = (
    "mw_g_per_mol",
    "clogp",
    "tpsa_A2",
    "hbd",
    "hba",
    "rotatable_bonds",
    "aromatic_rings",
    "fraction_csp3",
    "formal_charge",
    "heavy_atoms",
    "ionization_class",
    "pka_acid_approx",
    "pka_base_approx",
)

PH_PLASMA = 7.4

# (name, SMARTS, typical pKa). Order does not matter: the strongest group wins.
ACID_GROUPS: tuple[tuple[str, str, float], ...] = (
    ("sulfonic_or_sulfuric_acid", "[SX4](=O)(=O)[OX2H1,OX1-]", 1.0),
    ("phosphoric_or_phosphonic_acid", "[PX4](=O)[OX2H1,OX1-]", 1.5),
    ("carboxylic_acid", "[CX3](=O)[OX2H1,OX1-]", 4.2),
    ("tetrazole", "[#6]1:[#7]:[#7]:[#7]:[#7H1,#7-]:1", 4.9),
    ("tetrazole_2h", "[#6]1:[#7]:[#7H1,#7-]:[#7]:[#7]:1", 4.9),
    ("acyl_sulfonamide", "[CX3](=O)[NX3H1,NX2-][SX4](=O)(=O)", 5.0),
)
BASE_GROUPS: tuple[tuple[str, str, float], ...] = (
    ("quaternary_ammonium", "[NX4+;!$([N+]~[!#6])]", 14.0),
    (
        "guanidine",
        "[NX3;!$(N[C,S]=O)][CX3;!a](=[NX2;!$(N[C,S]=O);!$(N-a);!$(N~[O,N])])[NX3;!$(N[C,S]=O)]",
        12.5,
    ),
    (
        "amidine",
        "[NX3;!$(N[C,S]=O);!a][CX3;!a;!$(C-[N,O,S]);$(C-[#6,#1])]=[NX2;!$(N[C,S]=O);!a;!$(N~[O,N])]",
        11.5,
    ),
    ("aliphatic_amine", "[NX3;+0;!$(N~[!#6;!#1]);!$(N-[#6;!X4])]", 9.5),
)
_ACIDS = [(n, Chem.MolFromSmarts(s), p) for n, s, p in ACID_GROUPS]
_BASES = [(n, Chem.MolFromSmarts(s), p) for n, s, p in BASE_GROUPS]
ACID_CUTOFF = PH_PLASMA - 1.0
BASE_CUTOFF = PH_PLASMA + 1.0


def ionizable_groups(mol: Chem.Mol) -> tuple[float, float]:
    """Approximate pKa of the strongest acidic and basic groups (NaN where none).

    Returns
    -------
    (pka_acid_approx, pka_base_approx) : tuple of float
    """
    acid = [p for _, patt, p in _ACIDS if mol.HasSubstructMatch(patt)]
    base = [p for _, patt, p in _BASES if mol.HasSubstructMatch(patt)]
    return (min(acid) if acid else np.nan, max(base) if base else np.nan)


def classify_ionization(pka_acid: float, pka_base: float) -> str:
    """``acid``/``base``/``neutral``/``zwitterion`` at pH 7.4 from group pKa values."""
    is_acid = bool(np.isfinite(pka_acid) and pka_acid < ACID_CUTOFF)
    is_base = bool(np.isfinite(pka_base) and pka_base > BASE_CUTOFF)
    if is_acid and is_base:
        return "zwitterion"
    if is_acid:
        return "acid"
    if is_base:
        return "base"
    return "neutral"


def _descriptor_row(mol: Chem.Mol) -> dict[str, object]:
    pka_a, pka_b = ionizable_groups(mol)
    # the type: ignores below: rdkit's stubs omit the descriptor functions rdkit defines at
    # import time
    return {
        "mw_g_per_mol": Descriptors.MolWt(mol),  # type: ignore[attr-defined]
        "clogp": Crippen.MolLogP(mol),  # type: ignore[attr-defined]
        "tpsa_A2": rdMolDescriptors.CalcTPSA(mol),
        "hbd": Lipinski.NumHDonors(mol),  # type: ignore[attr-defined]
        "hba": Lipinski.NumHAcceptors(mol),  # type: ignore[attr-defined]
        "rotatable_bonds": rdMolDescriptors.CalcNumRotatableBonds(mol),
        "aromatic_rings": rdMolDescriptors.CalcNumAromaticRings(mol),
        "fraction_csp3": rdMolDescriptors.CalcFractionCSP3(mol),
        "formal_charge": Chem.GetFormalCharge(mol),
        "heavy_atoms": mol.GetNumHeavyAtoms(),
        "ionization_class": classify_ionization(pka_a, pka_b),
        "pka_acid_approx": pka_a,
        "pka_base_approx": pka_b,
    }


def _empty_row() -> dict[str, object]:
    row: dict[str, object] = dict.fromkeys(DESCRIPTOR_COLUMNS, np.nan)
    row["ionization_class"] = ""
    return row


_INT_COLUMNS = ("hbd", "hba", "rotatable_bonds", "aromatic_rings", "formal_charge", "heavy_atoms")


def compute_descriptors(smiles: Iterable[str]) -> pd.DataFrame:
    """Curated descriptors of already standardized SMILES (see module docstring for units).

    Invalid or empty SMILES give a row of NaN (and ``ionization_class`` ""). Integer counts
    use the nullable ``Int64`` dtype.

    Returns
    -------
    pandas.DataFrame, columns ``DESCRIPTOR_COLUMNS``, one row per input.
    """
    rows = []
    for s in smiles:
        mol, _ = mol_from_smiles(s)
        rows.append(_descriptor_row(mol) if mol is not None else _empty_row())
    df = pd.DataFrame(rows, columns=list(DESCRIPTOR_COLUMNS))
    for c in _INT_COLUMNS:
        df[c] = df[c].astype("Int64")
    for c in ("mw_g_per_mol", "clogp", "tpsa_A2", "fraction_csp3", "pka_acid_approx"):
        df[c] = df[c].astype(float)
    df["pka_base_approx"] = df["pka_base_approx"].astype(float)
    df["ionization_class"] = df["ionization_class"].astype(str)
    return df


def molecular_weight(smiles: Iterable[str]) -> np.ndarray:
    """Average molecular weight in g/mol (``Descriptors.MolWt``), NaN for invalid SMILES."""
    out = []
    for s in smiles:
        mol, _ = mol_from_smiles(s)
        # rdkit's stubs omit MolWt (rdkit defines it at import time)
        out.append(Descriptors.MolWt(mol) if mol is not None else np.nan)  # type: ignore[attr-defined]
    return np.asarray(out, dtype=float)


def morgan_counts(smiles: Sequence[str], *, radius: int = 2, fp_size: int = 2048) -> np.ndarray:
    """Morgan (ECFP-like) count fingerprints, hashed to ``fp_size`` bins.

    Parameters
    ----------
    smiles : sequence of str
        Standardized SMILES; invalid entries give an all-zero row.
    radius : int
        Morgan radius (2 ~ ECFP4).
    fp_size : int
        Number of hashed bins.

    Returns
    -------
    numpy.ndarray, shape (n_smiles, fp_size), dtype uint32
    """
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=fp_size)
    out = np.zeros((len(smiles), fp_size), dtype=np.uint32)
    for i, s in enumerate(smiles):
        mol, _ = mol_from_smiles(s)
        if mol is not None:
            out[i] = gen.GetCountFingerprintAsNumPy(mol)
    return out


def depict_svg(smiles: str, *, width: int = 300, height: int = 200) -> str:
    """2D depiction of a structure as an SVG document (text).

    Invalid SMILES give a small SVG that says so, so an app can always display something.
    """
    mol, error = mol_from_smiles(smiles)
    if mol is None:
        text = (error or "invalid structure").replace("&", "&amp;").replace("<", "&lt;")
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
            f'<text x="10" y="{height // 2}" font-size="12">{text}</text></svg>'
        )
    drawer = rdMolDraw2D.MolDraw2DSVG(width, height)
    rdMolDraw2D.PrepareAndDrawMolecule(drawer, mol)
    drawer.FinishDrawing()
    return drawer.GetDrawingText()


def add_features(compounds: pd.DataFrame, *, fp_size: int = 2048, radius: int = 2) -> pd.DataFrame:
    """Append descriptor and fingerprint columns to a frame of *standardized* compounds.

    ``compounds`` must have a standardized ``smiles`` column (as from ``read_compounds`` or
    ``standardize_smiles_batch``); rows whose SMILES is invalid get NaN descriptors and zero
    fingerprints. Existing descriptor columns are replaced. The input is not modified.
    """
    base = compounds.reset_index(drop=True)
    base = base.drop(columns=[c for c in base.columns if c in DESCRIPTOR_COLUMNS])
    smiles = base["smiles"].fillna("").astype(str).tolist()
    parts = [base, compute_descriptors(smiles)]
    if fp_size:
        fp = morgan_counts(smiles, radius=radius, fp_size=fp_size)
        parts.append(pd.DataFrame(fp, columns=[f"morgan_{i:04d}" for i in range(fp_size)]))
    return pd.concat(parts, axis=1)


def featurize(
    data: pd.DataFrame | Sequence[str] | str,
    *,
    smiles_column: str = "smiles",
    fp_size: int = 2048,
    radius: int = 2,
) -> pd.DataFrame:
    """Standardize and featurize compounds.

    Parameters
    ----------
    data : DataFrame, sequence of SMILES or one SMILES
        A DataFrame keeps its columns; its ``smiles_column`` (raw SMILES) is standardized:
        the result's ``smiles`` is the standardized parent and ``input_smiles`` the original.
    fp_size : int
        Morgan count fingerprint bins, as columns ``morgan_0000``...; 0 for none.
    radius : int
        Morgan radius.

    Returns
    -------
    pandas.DataFrame
        Input columns, ``input_smiles``, ``smiles``, ``inchikey``, ``valid``, ``error``, the
        descriptor columns (``DESCRIPTOR_COLUMNS``) and the fingerprint columns (uint32,
        zero for invalid rows).
    """
    if isinstance(data, str):
        data = [data]
    if isinstance(data, pd.DataFrame):
        if smiles_column not in data.columns:
            raise KeyError(f"featurize: no {smiles_column!r} column in {list(data.columns)}")
        base = data.reset_index(drop=True)
        raw = base[smiles_column].tolist()
    else:
        raw = list(data)
        base = pd.DataFrame(index=range(len(raw)))
    std = standardize_smiles_batch(raw)
    kept = base.drop(columns=[c for c in base.columns if c in std.columns or c == smiles_column])
    return add_features(pd.concat([kept, std], axis=1), fp_size=fp_size, radius=radius)


def write_features(
    input_path: str | Path, out_parquet: str | Path, *, fp_size: int = 2048
) -> pd.DataFrame:
    """``insilico featurize INPUT -o OUT.parquet``: read CSV/SDF, featurize, write Parquet.

    Every input row is written, invalid ones with ``valid`` False and their ``error``.

    Returns
    -------
    pandas.DataFrame
        The table written (so the CLI can print counts of valid and failed compounds).
    """
    from insilico.chem.io import read_compounds

    table = add_features(read_compounds(input_path), fp_size=fp_size)
    out_parquet = Path(out_parquet)
    out_parquet.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out_parquet, index=False)
    return table
