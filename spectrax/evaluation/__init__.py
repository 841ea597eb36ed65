"""The Spectrum evaluation (docs/method.md#evaluation): metrics, validity checks, suites, report.

  metrics.py   distributional, diversity, steerability (choose_k) and
               calibration metrics; pure numpy
  validity.py  the 22 diversity tasks' validity checks
  suites.py    steerability, distributional, diversity, capabilities
  report.py    metrics.json + report.html with PNG plots

Run it with `python -m spectrax.evaluate` (spectrax/evaluate.py).
"""
