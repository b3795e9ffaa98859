"""Features of the structure-based human PK model (:mod:`insilico.chem.pk_model`).

The model sees three blocks of numbers per molecule, all computed here with RDKit:

* a fixed list of RDKit 2D descriptors (:data:`DESCRIPTOR_NAMES`): size, lipophilicity
  (Crippen logP/MR), polarity (TPSA, VSA partitions), H-bonding, rings, topology and
  functional-group counts. The slowest RDKit descriptors (QED, BCUT2D, Ipc, BertzCT, EState
  indices, Chi/Kappa indices, EState VSA bins, Gasteiger charges) are left out so that
  thousands of molecules featurize in seconds;
* counts of ionizable groups from SMARTS (:data:`IONIZABLE_SMARTS`): acids and bases drive
  plasma protein binding (acids bind albumin) and tissue distribution (bases partition into
  acidic phospholipids), i.e. fu and VDss;
* Morgan count fingerprints, radius 2, folded to :data:`N_BITS` bits (counts clipped at
  255), used by the trees and -- as bits -- for Tanimoto similarity to the training set
  (nearest-neighbour prediction and applicability domain).

The feature layout is part of the trained artifact: :func:`feature_names` is stored with it
and checked on load, so a change here that would silently shift columns fails loudly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rdkit import Chem, RDLogger
from rdkit.Chem import Descriptors, rdFingerprintGenerator
from rdkit.Chem.MolStandardize import rdMolStandardize

RDLogger.DisableLog("rdApp.*")  # type: ignore[attr-defined]  # rdkit's stubs omit it

#: Morgan radius and folded length of the count fingerprint.
MORGAN_RADIUS = 2
N_BITS = 2048
#: Molecules larger than this (heavy atoms) are refused: the model was trained on small
#: molecules (largest training compound: about 130 heavy atoms).
MAX_HEAVY_ATOMS = 200

_SLOW_OR_REDUNDANT = {
    "qed",  # a quarter of all descriptor time
    "SPS",
    "Ipc",  # overflows to huge values
    "AvgIpc",
    "BertzCT",
    "ExactMolWt",  # duplicates MolWt
    "MaxAbsEStateIndex",
    "MaxEStateIndex",
    "MinAbsEStateIndex",
    "MinEStateIndex",
    "FpDensityMorgan1",
    "FpDensityMorgan2",
    "FpDensityMorgan3",
    "NumRadicalElectrons",
    "NumValenceElectrons",
    "MaxPartialCharge",
    "MinPartialCharge",
    "MaxAbsPartialCharge",
    "MinAbsPartialCharge",
    "BalabanJ",
}
# topological indices and EState VSA bins: half of the descriptor time, no measurable gain in
# grouped CV (VDss GMFE 2.13 with and without, CL 2.48 vs 2.50, t1/2 2.49 vs 2.49)
_SLOW_PREFIXES = ("BCUT2D", "Chi", "Kappa", "EState_VSA", "VSA_EState")

#: RDKit descriptor names used, in column order (RDKit's own order, minus the slow ones).
DESCRIPTOR_NAMES: tuple[str, ...] = tuple(
    name
    for name, _ in Descriptors._descList
    if name not in _SLOW_OR_REDUNDANT and not name.startswith(_SLOW_PREFIXES)
)
_DESCRIPTOR_FUNCS = dict(Descriptors._descList)

#: Ionizable groups (name -> SMARTS), counted as matches. Approximate pKa classes at pH 7.4.
IONIZABLE_SMARTS: dict[str, str] = {
    "carboxylic_acid": "[CX3](=O)[OX2H1,OX1-]",
    "tetrazole": "[$(c1nnn[nH]1),$(c1nn[nH]n1)]",
    "acyl_sulfonamide": "[#6]C(=O)[NH]S(=O)(=O)",
    "sulfonic_phosphonic_acid": "[S,P](=O)[OX2H1,OX1-]",
    "sulfonylurea": "[#6]S(=O)(=O)[NH]C(=O)N",
    "hydroxamic_or_imide_acid": "[CX3](=O)[NH][CX3]=O",
    "phenol": "c[OX2H1]",
    "primary_aliphatic_amine": "[NX3H2;!$(NC=[O,S,N]);!$(N[a]);!$(NS(=O));!$(N[#7,#8])][CX4]",
    "secondary_aliphatic_amine": (
        "[NX3H1;!$(NC=[O,S,N]);!$(N[a]);!$(NS(=O));!$(N[#7,#8])]([CX4])[CX4]"
    ),
    "tertiary_aliphatic_amine": (
        "[NX3H0;!$(NC=[O,S,N]);!$(N[a]);!$(NS(=O));!$(N[#7,#8])]([CX4])([CX4])[CX4]"
    ),
    "amidine_guanidine": "[NX3;!$(NC=O)][CX3]=[NX2;!$(N-[O,S])]",
    "quaternary_ammonium": "[NX4+;!$(N~O)]",
    "imidazole_pyridine_like": "[nX2;r5,r6;!$(n:n)]",
    "aniline": "[NX3;H2,H1;!$(NC=O)]c",
}
_IONIZABLE_PATTERNS = {k: Chem.MolFromSmarts(v) for k, v in IONIZABLE_SMARTS.items()}
_ACID_GROUPS = (
    "carboxylic_acid",
    "tetrazole",
    "acyl_sulfonamide",
    "sulfonic_phosphonic_acid",
    "sulfonylurea",
)
_BASE_GROUPS = (
    "primary_aliphatic_amine",
    "secondary_aliphatic_amine",
    "tertiary_aliphatic_amine",
    "amidine_guanidine",
    "quaternary_ammonium",
)
_EXTRA_NAMES = (
    *(f"n_{k}" for k in IONIZABLE_SMARTS),
    "n_acid_groups",
    "n_base_groups",
    "is_acid",
    "is_base",
    "is_zwitterion",
)

_MORGAN = rdFingerprintGenerator.GetMorganGenerator(radius=MORGAN_RADIUS, fpSize=N_BITS)
_LARGEST = rdMolStandardize.LargestFragmentChooser(preferOrganic=True)
_UNCHARGER = rdMolStandardize.Uncharger()


def feature_names() -> list[str]:
    """Column names of :attr:`ModelFeatures.x`, in order.

    Returns
    -------
    list of str
        Descriptor names, ionizable-group counts, then ``morgan_0`` ... ``morgan_{N_BITS-1}``.
    """
    return [*DESCRIPTOR_NAMES, *_EXTRA_NAMES, *(f"morgan_{i}" for i in range(N_BITS))]


@dataclass(frozen=True)
class ModelFeatures:
    """Features of a batch of molecules.

    Attributes
    ----------
    x : ndarray of float32, shape (n_molecules, n_features)
        Descriptors, group counts and Morgan counts (columns of :func:`feature_names`);
        rows of invalid molecules are NaN.
    fp_bits : ndarray of bool, shape (n_molecules, N_BITS)
        Morgan fingerprint as bits (count > 0), for Tanimoto similarity; False when invalid.
    valid : ndarray of bool, shape (n_molecules,)
    error : list of str
        ``""`` for a usable molecule, else the reason.
    """

    x: np.ndarray
    fp_bits: np.ndarray
    valid: np.ndarray
    error: list[str]


def parse_for_model(smiles: object) -> tuple[Chem.Mol | None, str]:
    """Parse a SMILES the way the training set was prepared.

    Keeps the largest organic fragment (salts and solvents are dropped) and neutralizes it,
    as in the curated Lombardo set the model was trained on.

    Parameters
    ----------
    smiles : object
        Normally a str; anything else (None, NaN) is reported as an error.

    Returns
    -------
    mol : rdkit.Chem.Mol or None
    error : str
        ``""`` when ``mol`` is usable, else the reason.
    """
    if not isinstance(smiles, str) or not smiles.strip():
        return None, "empty SMILES"
    mol = Chem.MolFromSmiles(smiles.strip())
    if mol is None:
        return None, f"unparsable SMILES {smiles.strip()!r}"
    try:
        # both steps are no-ops (and cost time) without fragments or charges
        if "." in smiles:
            mol = _LARGEST.choose(mol)
        if "+" in smiles or "-" in smiles:
            mol = _UNCHARGER.uncharge(mol)
    except Exception as exc:  # RDKit raises assorted errors on exotic valences
        return None, f"standardization failed: {exc}"
    n_heavy = mol.GetNumHeavyAtoms()
    if not any(a.GetAtomicNum() == 6 for a in mol.GetAtoms()):
        return None, "no carbon atoms"
    if n_heavy > MAX_HEAVY_ATOMS:
        return None, f"more than {MAX_HEAVY_ATOMS} heavy atoms ({n_heavy})"
    return mol, ""


def _mol_row(mol: Chem.Mol) -> tuple[np.ndarray, np.ndarray]:
    desc = np.array([_DESCRIPTOR_FUNCS[n](mol) for n in DESCRIPTOR_NAMES], dtype=np.float64)
    counts = {k: len(mol.GetSubstructMatches(p)) for k, p in _IONIZABLE_PATTERNS.items()}
    n_acid = sum(counts[k] for k in _ACID_GROUPS)
    n_base = sum(counts[k] for k in _BASE_GROUPS)
    extra = np.array(
        [
            *counts.values(),
            n_acid,
            n_base,
            n_acid > 0 and n_base == 0,
            n_base > 0 and n_acid == 0,
            n_acid > 0 and n_base > 0,
        ],
        dtype=np.float64,
    )
    fp = np.minimum(_MORGAN.GetCountFingerprintAsNumPy(mol), 255)
    return np.concatenate([desc, extra]), fp


def compute_model_features(smiles: list[str] | tuple[str, ...]) -> ModelFeatures:
    """Featurize a batch of SMILES for the PK model.

    One bad SMILES does not stop the batch: its row is NaN and ``error`` says why.

    Parameters
    ----------
    smiles : sequence of str

    Returns
    -------
    ModelFeatures
    """
    n = len(smiles)
    n_dense = len(DESCRIPTOR_NAMES) + len(_EXTRA_NAMES)
    x = np.full((n, n_dense + N_BITS), np.nan, dtype=np.float32)
    bits = np.zeros((n, N_BITS), dtype=bool)
    valid = np.zeros(n, dtype=bool)
    errors: list[str] = []
    for i, smi in enumerate(smiles):
        mol, err = parse_for_model(smi)
        if mol is not None:
            try:
                dense, fp = _mol_row(mol)
            except Exception as exc:  # a descriptor failing is reported, not raised
                mol, err = None, f"descriptor calculation failed: {exc}"
        if mol is None:
            errors.append(err)
            continue
        # float32 like scikit-learn's trees; clip so huge values stay finite
        x[i, :n_dense] = np.clip(np.nan_to_num(dense, nan=0.0), -1e30, 1e30)
        x[i, n_dense:] = fp
        bits[i] = fp > 0
        valid[i] = True
        errors.append("")
    return ModelFeatures(x=x, fp_bits=bits, valid=valid, error=errors)


def tanimoto_max(query_bits: np.ndarray, ref_bits: np.ndarray, k: int = 1) -> np.ndarray:
    """Largest Tanimoto similarities of each query to a reference set (bit vectors).

    Parameters
    ----------
    query_bits : ndarray of bool, shape (n_query, n_bits)
    ref_bits : ndarray of bool, shape (n_ref, n_bits)
    k : int
        Number of nearest neighbours to return.

    Returns
    -------
    sim : ndarray, shape (n_query, k)
        Descending similarities.
    """
    sim = tanimoto_matrix(query_bits, ref_bits)
    part = -np.partition(-sim, k - 1, axis=1)[:, :k]
    return -np.sort(-part, axis=1)


def tanimoto_matrix(query_bits: np.ndarray, ref_bits: np.ndarray) -> np.ndarray:
    """Tanimoto similarity matrix of bit vectors, shape (n_query, n_ref), via a matrix product."""
    q = query_bits.astype(np.float32)
    r = ref_bits.astype(np.float32)
    inter = q @ r.T
    union = q.sum(1)[:, None] + r.sum(1)[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        sim = np.where(union > 0, inter / union, 0.0)
    return sim.astype(np.float64)
