"""Compounds: the only sub-package that imports RDKit.

Modules (import them directly; nothing is imported eagerly here so that importing
``insilico.chem`` stays cheap):

- :mod:`insilico.chem.standardize` — parse SMILES/SDF, largest fragment, neutralize,
  canonical SMILES, InChIKey, reasons for unusable molecules.
- :mod:`insilico.chem.descriptors` — curated descriptors with units, ionization class,
  Morgan count fingerprints, SVG depictions, ``featurize``/``write_features``.
- :mod:`insilico.chem.io` — ``read_compounds`` (CSV/SDF) with measured columns.
- :mod:`insilico.chem.mechanistic` — IVIVE: well-stirred liver, renal route, Vss
  (Schmitt, Øie–Tozer), oral absorption.
- :mod:`insilico.chem.pk_model` — structure-based human PK prediction.
- :mod:`insilico.chem.profile` — ``CompoundProfile``, ``build_profiles``,
  ``predict_pk_table``.
- :mod:`insilico.chem.alerts` — reactive-metabolite structural alerts (SMARTS), an input
  of the liver-injury model in :mod:`insilico.endpoints.liver`.
"""
