"""Support for the Streamlit app (``app/``): everything the pages call that is not display.

The pages stay thin (widgets -> spec -> one call here or in the library -> display). These
modules hold what the app needs besides the library's simulation API and have no Streamlit
import, so they are tested like the rest of the library:

- :mod:`insilico.ui.runs` — the generic scorecard, ranking, exposure histograms, dose-scan
  curves, comparison of two runs, downloads (runs are read by :mod:`insilico.results.access`,
  one patient simulated again by :mod:`insilico.trial.resimulate`).
- :mod:`insilico.ui.compounds` — uploads (CSV/SDF bytes, pasted SMILES) to the compound table
  with structure images, descriptors, PK with intervals and sources, warnings; inline edits.
- :mod:`insilico.ui.cohorts` — the shipped presets, a cohort preview, histogram and phenotype
  tables.
- :mod:`insilico.ui.design` — the trial design as a plain mapping: defaults, YAML in and out,
  validation with readable errors, regimen check.
- :mod:`insilico.ui.jobs` — a trial run in the background (thread or isolated process) with
  progress and cancel; :mod:`insilico.ui.runner` is the isolated process's entry point.
- :mod:`insilico.ui.report` — a one-page HTML report (scorecard and SVG plots).
"""
