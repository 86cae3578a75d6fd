"""``detector_calibration``: the redundancy checks and per-fuel data-quality detectors fitted on the training days,
stored as JSON for the live job (``stream.job.StreamConfig.detector_calibration_file``)."""

import dagster as dg
import polars as pl

from grid_guardian_assets.defs.resources import BmrsStorageResource
from grid_guardian_assets.reporting import markdown_table


@dg.asset(
    group_name="detect",
    kinds={"json"},
    description="The redundancy checks (FUELHH against ITSDO, AGWS, NESO's interconnector flows and B1610) and the "
    "per-fuel data-quality limits (stuck readings, unseen signs, unit jumps, infeed losses), fitted on the bundled 2018 data of the "
    "training days: relations and spreads on January–June, thresholds at the stated false-alarm rate on July–September; "
    "October–December is never used. Stored as data/detect/detector_calibration.json, which the live job loads.",
)
def detector_calibration(context: dg.AssetExecutionContext, bmrs_storage: BmrsStorageResource) -> dg.MaterializeResult:
    from grid_guardian_assets.detect.calibration import FIT_DAYS, VALIDATION_DAYS, fit_detectors

    calibration = fit_detectors(FIT_DAYS, VALIDATION_DAYS)
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
    context.log.info(f"{len(calibration.relations)} redundancy checks and {len(calibration.fuel_limits)} fuel types "
                     f"fitted on {len(FIT_DAYS)} + {len(VALIDATION_DAYS)} days")
    return dg.MaterializeResult(
        metadata={
            "data": "bundled 2018 recordings (FUELHH, NESO demand and flows, AGWS; B1610 synthetic from FUELHH)",
            "fit_days": f"{calibration.fit_days[0]}..{calibration.fit_days[1]} ({len(FIT_DAYS)} days)",
            "validation_days": f"{calibration.validation_days[0]}..{calibration.validation_days[1]} "
            f"({len(VALIDATION_DAYS)} days)",
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
