"""Structural alerts for reactive-metabolite formation and direct electrophiles (SMARTS).

A structural alert is a substructure that is bioactivated to (or already is) an electrophile
able to bind proteins covalently, the first step in many idiosyncratic drug reactions,
hepatotoxicity in particular. The catalogue below is a curated subset of the alerts reviewed
in:

- Stepan et al. 2011, Chem Res Toxicol 24:1345, doi:10.1021/tx200168d — structural
  alert/reactive metabolite analysis of drugs withdrawn or boxed for idiosyncratic toxicity
  versus the top 200 prescribed drugs (alerts in 78–86 % of the toxic drugs);
- Kalgutkar et al. 2005, Curr Drug Metab 6:161, doi:10.2174/1389200054021799 — catalogue of
  bioactivation pathways of functional groups;
- Enoch, Ellison, Schultz & Cronin 2011, Crit Rev Toxicol 41:783,
  doi:10.3109/10408444.2011.598141 — electrophilic reaction domains of covalent protein
  binding (Michael addition, SN2, Schiff base, acylation).

Deliberately NOT included: carboxylic acids (acyl glucuronides). Stepan et al. list them,
but they occur in a large fraction of safe oral drugs (ibuprofen, for one) and carry little
signal on their own. Free aromatic amines and anilides are separate alerts. The SMARTS are
written for RDKit aromaticity; a molecule is matched as given (standardize it first, e.g.
with :func:`insilico.chem.standardize.standardize_smiles`, if it may carry salts).

This module uses RDKit through :mod:`insilico.chem.standardize` for parsing; the catalogue
itself (:data:`REACTIVE_METABOLITE_ALERTS`) is plain data.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from insilico.errors import CompoundError

_STEPAN = "Stepan et al. 2011 Chem Res Toxicol, doi:10.1021/tx200168d"
_KALGUTKAR = "Kalgutkar et al. 2005 Curr Drug Metab, doi:10.2174/1389200054021799"
_ENOCH = "Enoch et al. 2011 Crit Rev Toxicol, doi:10.3109/10408444.2011.598141"


@dataclass(frozen=True)
class StructuralAlert:
    """One structural alert.

    Attributes
    ----------
    name : str
        Short snake_case identifier (used as a column value; stable).
    smarts : str
        RDKit SMARTS pattern.
    source : str
        Literature source (with DOI).
    mechanism : str
        The reactive species or reaction it stands for.
    """

    name: str
    smarts: str
    source: str
    mechanism: str = ""


REACTIVE_METABOLITE_ALERTS: tuple[StructuralAlert, ...] = (
    StructuralAlert(
        "para_aminophenol",
        "[OX2;H1,$(O[CX4])]c1ccc([NX3;!$([N+](=O)[O-]);!$(N(=O)=O)])cc1",
        f"{_STEPAN}; {_KALGUTKAR}",
        "p-aminophenols / p-alkoxyanilines -> quinone imines (acetaminophen -> NAPQI)",
    ),
    StructuralAlert(
        "aromatic_amine",
        "[NX3;H2;!$(N[#6]=[O,S,N])][c;$(c1ccccc1)]",
        f"{_STEPAN}; {_KALGUTKAR}",
        "anilines -> N-hydroxylamines / nitroso (N-oxidation)",
    ),
    StructuralAlert(
        "diarylamine",
        "c[NX3;H1]c",
        f"{_STEPAN}; {_KALGUTKAR}",
        "diphenylamines -> quinone imines after ring hydroxylation (diclofenac, lumiracoxib)",
    ),
    StructuralAlert(
        "anilide",
        "[c;$(c1ccccc1)][NX3;H1]C(=O)[#6]",
        _STEPAN,
        "anilides -> hydrolysis to anilines, then N-oxidation",
    ),
    StructuralAlert(
        "nitroaromatic",
        "[c,n][$([NX3+](=O)[O-]),$([NX3](=O)=O)]",
        f"{_STEPAN}; {_KALGUTKAR}",
        "nitroreduction -> nitroso / hydroxylamine",
    ),
    StructuralAlert(
        "furan",
        "c1ccoc1",
        f"{_STEPAN}; {_KALGUTKAR}",
        "epoxidation / cis-enedione (furosemide, menthofuran)",
    ),
    StructuralAlert(
        "thiophene",
        "c1ccsc1",
        f"{_STEPAN}; {_KALGUTKAR}",
        "S-oxidation / epoxidation (tienilic acid)",
    ),
    StructuralAlert(
        "thiazole_2_amino",
        "[NX3]c1nc[cH1][sX2]1",
        f"{_STEPAN}; {_KALGUTKAR}",
        "2-aminothiazole with free C5-H: C4-C5 epoxidation -> thioureas (sudoxicam, not meloxicam)",
    ),
    StructuralAlert(
        "thiazolidinedione",
        "O=C1[NX3]C(=O)[SX2][CX4]1",
        f"{_STEPAN}; {_KALGUTKAR}",
        "thiazolidinedione ring scission -> reactive sulfoxide / isocyanate (troglitazone)",
    ),
    StructuralAlert(
        "hydrazine",
        "[NX3;!$(N=*);!$([N+])][NX3;!$(N=*);!$([N+])]",
        f"{_STEPAN}; {_KALGUTKAR}",
        "hydrazines / hydrazides -> diazenes, radicals (isoniazid, hydralazine)",
    ),
    StructuralAlert(
        "azo_aromatic",
        "c[NX2]=[NX2]c",
        _KALGUTKAR,
        "azo reduction -> aromatic amines",
    ),
    StructuralAlert(
        "catechol",
        "[OX2H]c:c[OX2H]",
        f"{_STEPAN}; {_KALGUTKAR}",
        "oxidation -> ortho-quinones",
    ),
    StructuralAlert(
        "hydroquinone",
        "[OX2H]c1ccc([OX2H])cc1",
        f"{_STEPAN}; {_KALGUTKAR}",
        "oxidation -> para-quinones",
    ),
    StructuralAlert(
        "quinone",
        "O=[#6]1[#6]=,:[#6][#6](=O)[#6]=,:[#6]1",
        _ENOCH,
        "Michael acceptor / redox cycler",
    ),
    StructuralAlert(
        "methylenedioxyphenyl",
        "c1cc2OCOc2cc1",
        f"{_STEPAN}; {_KALGUTKAR}",
        "1,3-benzodioxole -> carbene / catechol (paroxetine, MDMA)",
    ),
    StructuralAlert(
        "terminal_alkyne",
        "[CX2H1]#[CX2]",
        f"{_STEPAN}; {_KALGUTKAR}",
        "oxirene / ketene (17-alpha-ethinylestradiol)",
    ),
    StructuralAlert(
        "michael_acceptor_terminal",
        "[CH2]=[CX3][$([CX3]=O),$(C#N),$([SX4](=O)=O),$([NX3+](=O)[O-])]",
        _ENOCH,
        "terminal alpha,beta-unsaturated carbonyl/nitrile/sulfone: Michael addition",
    ),
    StructuralAlert(
        "thioamide_thiourea",
        "[#7;X3][#6;X3]=[SX1]",
        f"{_STEPAN}; {_KALGUTKAR}",
        "S-oxidation -> sulfenic / sulfinic acids (propylthiouracil, thioureas)",
    ),
    StructuralAlert(
        "epoxide_aziridine",
        "[#6;r3]1[O,N;r3][#6;r3]1",
        _ENOCH,
        "strained three-membered ring: SN2 ring opening",
    ),
    StructuralAlert(
        "alkyl_halide_primary",
        "[CH2X4;!$(C[F,Cl,Br,I][F,Cl,Br,I])][Cl,Br,I]",
        _ENOCH,
        "primary alkyl chloride/bromide/iodide: SN2",
    ),
    StructuralAlert(
        "aldehyde",
        "[CX3H1](=O)[#6]",
        _ENOCH,
        "Schiff base with lysine",
    ),
    StructuralAlert(
        "acylating_agent",
        "[$([CX3](=O)[Cl,Br,I,F]),$([NX2]=C=[O,S]),$([CX3](=O)O[CX3]=O)]",
        _ENOCH,
        "acyl halide, iso(thio)cyanate, anhydride: acylation",
    ),
    StructuralAlert(
        "cyclopropylamine",
        "[NX3;H2,H1;!$(N[#6]=[O,S,N])][CX4;r3]",
        _STEPAN,
        "cyclopropylamine ring opening after N-oxidation (trovafloxacin)",
    ),
)


@lru_cache(maxsize=1)
def _compiled() -> tuple:
    from rdkit import Chem

    out = []
    for alert in REACTIVE_METABOLITE_ALERTS:
        patt = Chem.MolFromSmarts(alert.smarts)
        if patt is None:  # pragma: no cover - guarded by a test
            raise ValueError(f"alert {alert.name!r}: invalid SMARTS {alert.smarts!r}")
        out.append((alert.name, patt))
    return tuple(out)


def _to_mol(smiles_or_mol):
    from rdkit import Chem

    if isinstance(smiles_or_mol, Chem.Mol):
        return smiles_or_mol
    if isinstance(smiles_or_mol, str):
        from insilico.chem.standardize import mol_from_smiles

        mol, reason = mol_from_smiles(smiles_or_mol)
        if mol is None:
            raise CompoundError(smiles_or_mol, reason)
        return mol
    raise CompoundError(repr(smiles_or_mol), "expected a SMILES string or an RDKit Mol")


def match_alerts(smiles_or_mol) -> list[str]:
    """Names of the structural alerts present in a molecule, in catalogue order.

    Parameters
    ----------
    smiles_or_mol : str or rdkit.Chem.Mol
        A SMILES string or an RDKit molecule.

    Returns
    -------
    list of str
        Names from :data:`REACTIVE_METABOLITE_ALERTS` (each at most once).

    Raises
    ------
    insilico.errors.CompoundError
        An empty or unparsable SMILES (the message names the value and the reason).
    """
    mol = _to_mol(smiles_or_mol)
    return [name for name, patt in _compiled() if mol.HasSubstructMatch(patt)]


def count_alerts(smiles_or_mol) -> int:
    """Number of distinct alerts present (the ``n_alerts`` input of
    :func:`insilico.endpoints.liver.dili_probability`)."""
    return len(match_alerts(smiles_or_mol))


def alerts_table(smiles) -> list[dict]:
    """Alerts of several compounds; invalid structures get a reason instead of an exception.

    Parameters
    ----------
    smiles : iterable of str

    Returns
    -------
    list of dict
        One dict per input, in order: ``smiles``, ``alerts`` (``";"``-joined names),
        ``n_alerts`` (int; -1 when invalid), ``valid`` (bool), ``error`` (str).
    """
    rows = []
    for s in smiles:
        try:
            names = match_alerts(s)
        except CompoundError as exc:
            rows.append(
                {"smiles": s, "alerts": "", "n_alerts": -1, "valid": False, "error": exc.reason}
            )
            continue
        rows.append(
            {
                "smiles": s,
                "alerts": ";".join(names),
                "n_alerts": len(names),
                "valid": True,
                "error": "",
            }
        )
    return rows
