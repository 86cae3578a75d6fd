"""Bad-data detectors of the kind a transmission operator runs beside its state estimator.

* ``redundancy``: the same quantity measured twice by different datasets, the residual of a learned relation
  normalised by its normal spread, the largest normalised residual naming the suspect measurement.
* ``data_quality``: per-fuel limits learned from training days (exact repeats, signs, ×1000 unit jumps) and integrity
  of settlement periods (missing, duplicated).
* ``measurements``: what the daily stores hold, as one row per settlement period, each column a named measurement.
* ``calibration``: fitting every detector on the stored days of its windows, and its JSON form for the assets and the
  live job.
* ``findings``, ``physics_rules``: what every detector reports (``Finding``, ``Origin``), and the frequency and
  national-balance rules.

Every score is calibrated so that 1.0 is its alarm threshold, as ``detect.findings.Finding`` expects. No Dagster, no
torch: assets and the live job import this package, not the other way round.
"""
