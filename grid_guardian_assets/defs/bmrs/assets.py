"""One chain of assets per BMRS dataset: raw responses, validated polars frames, HDF5 store."""

import dagster as dg
import polars as pl

from grid_guardian_assets.datasets import DATASETS, DatasetSpec
from grid_guardian_assets.defs.bmrs.partitions import bmrs_daily_partitions, partition_day
from grid_guardian_assets.defs.resources import BmrsStorageResource, ElexonApiResource
from grid_guardian_assets.ingest import fetch_partition
from grid_guardian_assets.reporting import markdown_table, partition_plot
from grid_guardian_assets.settlement import period_count
from grid_guardian_assets.validation import ValidationReport, frame_from_raw, validate_partition

ELEXON_POOL = "elexon_api"
VALID_CHECK = "valid"


def _time_range(spec: DatasetSpec, frame: pl.DataFrame) -> dict[str, str]:
    times = frame[spec.time_field].drop_nulls()
    if times.len() == 0:
        return {}
    return {"time_min": times.min().isoformat(), "time_max": times.max().isoformat()}


def _check_metadata(report: ValidationReport) -> dict[str, object]:
    meta: dict[str, object] = {
        # Dagster records checks per asset, not per partition: say which settlement day this result is for.
        "partition": report.day.isoformat(),
        "failures": report.failures.height,
        "exact_duplicates_dropped": report.exact_duplicates_dropped,
        "rows_outside_partition": report.rows_outside_partition,
        "settlement_periods_expected": period_count(report.day),
    }
    if report.unexpected_fields:
        meta["unexpected_fields"] = ", ".join(report.unexpected_fields)
    if not report.passed:
        meta["failures_by_check"] = dg.MetadataValue.json(report.failure_counts())
        sample = report.failure_sample(per_check=10)
        meta["failing_rows"] = dg.MetadataValue.md(
            f"{sample.height} of {report.failures.height} problems, up to 10 per check:\n\n" + markdown_table(sample, limit=sample.height)
        )
    return meta


def build_bmrs_assets(spec: DatasetSpec) -> list[dg.AssetsDefinition]:
    """``{name}_raw`` -> ``{name}_frames`` -> ``{name}_store`` for one dataset."""
    name = spec.name
    group = f"bmrs_{name}"
    tags = {"dataset": spec.code}

    @dg.asset(
        name=f"{name}_raw",
        partitions_def=bmrs_daily_partitions,
        group_name=group,
        pool=ELEXON_POOL,
        kinds={"python", "json"},
        tags=tags,
        description=f"Raw Insights API responses for {spec.code} ({spec.description}), gzip'd JSON per fetch.",
    )
    def raw_asset(
        context: dg.AssetExecutionContext, elexon: ElexonApiResource, bmrs_storage: BmrsStorageResource
    ) -> dg.MaterializeResult:
        day = partition_day(context)
        with elexon.get_client() as client:
            raw = fetch_partition(client, bmrs_storage.raw_archive(), spec, day)
        return dg.MaterializeResult(
            metadata={
                "requests": len(raw.responses),
                "bytes": raw.byte_count,
                "synthetic": raw.synthetic,
                "archive_path": dg.MetadataValue.path(str(raw.path)),
                "base_url": elexon.base_url,
            }
        )

    @dg.asset(
        name=f"{name}_frames",
        partitions_def=bmrs_daily_partitions,
        group_name=group,
        deps=[raw_asset],
        io_manager_key="frames_io_manager",
        kinds={"polars"},
        tags=tags,
        check_specs=[
            dg.AssetCheckSpec(
                VALID_CHECK,
                asset=f"{name}_frames",
                blocking=True,
                description="pandera schema, physical ranges, unique keys, every settlement period present, "
                "no conflicting duplicates. A failing partition is not stored.",
            )
        ],
        description=f"{spec.code} rows of one settlement day, typed and validated (pandera, polars backend).",
    )
    def frames_asset(context: dg.AssetExecutionContext, bmrs_storage: BmrsStorageResource):
        day = partition_day(context)
        raw = bmrs_storage.raw_archive().latest(spec.code, day)
        report = validate_partition(spec, day, frame_from_raw(spec, raw))
        check_meta = _check_metadata(report)
        yield dg.AssetCheckResult(
            check_name=VALID_CHECK, passed=report.passed, severity=dg.AssetCheckSeverity.ERROR, metadata=check_meta
        )
        if not report.passed:
            # Raising (rather than emitting the frame) keeps a bad partition out of every later step and run.
            raise dg.Failure(description=report.summary(), metadata=check_meta)
        yield dg.Output(
            report.frame,
            metadata={
                "rows": report.frame.height,
                "exact_duplicates_dropped": report.exact_duplicates_dropped,
                "synthetic": raw.synthetic,
                "raw_archive_path": dg.MetadataValue.path(str(raw.path)),
                **_time_range(spec, report.frame),
                "preview": dg.MetadataValue.md(markdown_table(report.frame, limit=10)),
            },
        )

    @dg.asset(
        name=f"{name}_store",
        partitions_def=bmrs_daily_partitions,
        group_name=group,
        ins={"frame": dg.AssetIn(f"{name}_frames")},
        kinds={"hdf5"},
        tags=tags,
        description=f"{spec.code} settlement days in HDF5 (h5py, chunked, gzip); a rewrite replaces the day.",
    )
    def store_asset(context: dg.AssetExecutionContext, bmrs_storage: BmrsStorageResource, frame: pl.DataFrame):
        day = partition_day(context)
        stored = bmrs_storage.hdf5_store().write_partition(spec, day, frame, writer=context.run_id)
        metadata: dict[str, object] = {
            "rows": stored.rows,
            "file": dg.MetadataValue.path(str(stored.path)),
            "file_bytes": stored.file_bytes,
            "replaced_existing_day": stored.replaced,
            "sha256": stored.sha256,
            **_time_range(spec, frame),
        }
        plot = partition_plot(spec, frame, f"{spec.code} {day}")
        if plot:
            metadata["plot"] = dg.MetadataValue.md(plot)
        return dg.MaterializeResult(metadata=metadata)

    return [raw_asset, frames_asset, store_asset]


bmrs_assets = [a for spec in DATASETS.values() for a in build_bmrs_assets(spec)]
