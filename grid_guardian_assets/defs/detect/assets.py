"""``detector_calibration``: the redundancy checks and per-fuel data-quality detectors fitted on the stored days of its
fit and threshold windows, stored as JSON for the live job (``stream.job.StreamConfig.detector_calibration_file``)."""

import dagster as dg
import polars as pl

from grid_guardian_assets.datasets import AGWS, B1610, FUELHH, INDO, ITSDO, NESO_DEMAND
from grid_guardian_assets.defs.refresh.conditions import WEEKLY_REFRESH
from grid_guardian_assets.defs.resources import BmrsStorageResource
from grid_guardian_assets.defs.windows_config import WindowsConfig, require_window, stored_deps
from grid_guardian_assets.reporting import markdown_table

# The daily stores the detectors read; FUELHH is required, the others are fitted where stored.
CALIBRATION_INPUTS = (FUELHH, INDO, ITSDO, NESO_DEMAND, AGWS, B1610)
# What a user backfills for a window the detectors lack: the real BMRS datasets every year has.
STORE_SELECTION = "*fuelhh_store,*indo_store,*itsdo_store"


@dg.asset(
    automation_condition=WEEKLY_REFRESH,
    group_name="detect",
    kinds={"json"},
    deps=stored_deps(*CALIBRATION_INPUTS),
    description="The redundancy checks (FUELHH against INDO, AGWS, NESO's interconnector flows and B1610; INDO and "
    "ITSDO against NESO's ND and TSD) and the per-fuel data-quality limits (stuck readings, unseen signs, unit jumps, "
    "infeed losses), fitted on what the daily stores hold for the fit window (relations, spreads) and the threshold "
    "window (thresholds at the stated false-alarm rate); the held-out window is never read. Windows are run config, "
    "relative to the newest stored day by default. A check whose datasets are not stored is listed as not fitted. "
    "Stored as data/detect/detector_calibration.json, which the live job loads.",
)
def detector_calibration(context: dg.AssetExecutionContext, config: WindowsConfig,
                         bmrs_storage: BmrsStorageResource) -> dg.MaterializeResult:
    from grid_guardian_assets.detect.calibration import fit_detectors
    from grid_guardian_assets.detect.measurements import StoredMeasurements

    measurements = StoredMeasurements(bmrs_storage.hdf5_store())
    windows = config.resolve(bmrs_storage)
    stored = measurements.stored_days(FUELHH)
    for name, window in (("fit", windows.fit), ("threshold", windows.threshold)):
        require_window(window, stored, what=f"detector_calibration's {name} window", asset="fuelhh_store",
                       select=STORE_SELECTION)
    try:
        calibration = fit_detectors(measurements, windows)
    except ValueError as exc:
        raise dg.Failure(description=f"detector_calibration: {exc}") from None
    path = bmrs_storage.layout.detector_calibration
    path.parent.mkdir(parents=True, exist_ok=True)
    calibration.save(path)
    checks = pl.DataFrame(
        [(name, r.threshold, r.spread_mw, r.step_threshold, r.step_spread_mw, r.slope, r.intercept,
          min(r.time_of_day_offset_mw, default=0.0), max(r.time_of_day_offset_mw, default=0.0), r.fit_periods,
          r.validation_periods, r.gross_errors)
         for name, r in calibration.relations.items()],
        schema=["check", "threshold_spreads", "spread_mw", "step_threshold_spreads", "step_spread_mw", "slope",
                "intercept_mw", "time_of_day_offset_min_mw", "time_of_day_offset_max_mw", "fit_periods",
                "validation_periods", "gross_errors"],
        orient="row",
    ).with_columns(pl.col("threshold_spreads", "spread_mw", "step_threshold_spreads", "step_spread_mw", "slope",
                          "intercept_mw", "time_of_day_offset_min_mw", "time_of_day_offset_max_mw").round(3))
    fuels = pl.DataFrame(
        [(f, limit.repeat_limit, ",".join(limit.signs), round(limit.jump_limit_decades, 3),
          None if limit.drop_limit_mw is None else round(limit.drop_limit_mw, 1), limit.periods)
         for f, limit in sorted(calibration.fuel_limits.items())],
        schema=["fuel", "repeat_limit", "signs", "jump_limit_decades", "drop_limit_mw", "periods"],
        orient="row",
    )
    stored_by_dataset = measurements.datasets_stored(windows.training.days())
    context.log.info(f"{len(calibration.relations)} redundancy checks and {len(calibration.fuel_limits)} fuel types "
                     f"fitted on {windows.fit.describe()} + {windows.threshold.describe()}")
    for name, why in calibration.not_fitted.items():
        context.log.warning(f"{name} not fitted: {why}")
    return dg.MaterializeResult(
        metadata={
            "windows": dg.MetadataValue.json(windows.describe()),
            "stored_days_by_dataset": dg.MetadataValue.json(stored_by_dataset),
            "not_fitted": dg.MetadataValue.json(calibration.not_fitted),
            "fit_days": windows.fit.describe(),
            "validation_days": windows.threshold.describe(),
            "false_alarm_rate": dg.MetadataValue.float(calibration.false_alarm_rate),
            "false_alarm_rate_meaning": "alarms per redundancy check and normal settlement period at its threshold",
            "checks": len(calibration.relations),
            "fuel_types": len(calibration.fuel_limits),
            "thresholds": {name: round(r.threshold, 3) for name, r in calibration.relations.items()},
            "spreads_mw": {name: round(r.spread_mw, 3) for name, r in calibration.relations.items()},
            "check_table": dg.MetadataValue.md(markdown_table(checks, limit=len(calibration.relations))),
            "fuel_limits": dg.MetadataValue.md(markdown_table(fuels, limit=len(calibration.fuel_limits))),
            "file": dg.MetadataValue.path(str(path)),
        }
    )
