"""The HDF5 store: round trips, idempotent rewrites, range reads, locking and crash leftovers."""

import datetime as dt
import multiprocessing
from pathlib import Path

import h5py
import polars as pl
import pytest
from filelock import FileLock, Timeout

from grid_guardian_assets import gaps
from grid_guardian_assets.datasets import B1610, FUELHH
from grid_guardian_assets.replay import bmrs_history, synthetic
from grid_guardian_assets.store.hdf5 import HDF5Store
from grid_guardian_assets.validation import frame_from_records, validate_partition


def valid_frame(day: dt.date, spec=FUELHH, confirmed: frozenset[gaps.Cell] | None = None) -> pl.DataFrame:
    rows = bmrs_history.fuelhh_records(day) if spec is FUELHH else [r for n in range(1, 51) for r in synthetic.b1610_records(day, n)]
    report = validate_partition(spec, day, frame_from_records(spec, rows), confirmed)
    assert report.passed, report.summary()
    return report.frame


def test_round_trip_keeps_every_value_and_type_and_the_recorded_gap(tmp_path: Path) -> None:
    store = HDF5Store(tmp_path)
    day = dt.date(2018, 10, 28)  # 50 periods; the files hold 49 of them (the 48th is in no row)
    cells = gaps.missing_cells(FUELHH, day, bmrs_history.fuelhh_records(day))
    frame = valid_frame(day, confirmed=cells)
    stored = store.write_partition(FUELHH, day, frame, gap=cells)
    back = store.read_range(FUELHH, day, day)
    assert back.schema == frame.schema
    assert back.equals(frame)
    assert stored.rows == 49 * 14 and not stored.replaced
    assert store.recorded_gaps(FUELHH, day, day) == {day: cells} and {p for _, p in cells} == {48}
    store.write_partition(FUELHH, day, frame)  # rewritten whole (a later fetch filled the gap): no gap recorded
    assert store.recorded_gaps(FUELHH, day, day) == {}


def test_nulls_in_optional_fields_survive(tmp_path: Path) -> None:
    store = HDF5Store(tmp_path)
    day = dt.date(2018, 3, 1)
    frame = valid_frame(day, B1610).with_columns(
        nationalGridBmUnitId=pl.when(pl.int_range(pl.len()) % 7 == 0).then(None).otherwise(pl.col("nationalGridBmUnitId"))
    )
    store.write_partition(B1610, day, frame)
    back = store.read_range(B1610, day, day)
    assert back["nationalGridBmUnitId"].null_count() == frame["nationalGridBmUnitId"].null_count() > 0
    assert back.sort(B1610.key).equals(frame.sort(B1610.key))


def test_rewriting_a_day_replaces_it_exactly(tmp_path: Path) -> None:
    store = HDF5Store(tmp_path)
    day = dt.date(2018, 3, 1)
    frame = valid_frame(day)
    first = store.write_partition(FUELHH, day, frame)
    second = store.write_partition(FUELHH, day, frame)
    assert second.replaced and second.sha256 == first.sha256
    assert store.read_range(FUELHH, day, day).height == 672
    changed = frame.with_columns(pl.col("generation") + 1)
    store.write_partition(FUELHH, day, changed)
    assert store.read_range(FUELHH, day, day).equals(changed)
    assert store.days(FUELHH) == [day]


def test_range_reads_are_sorted_and_inclusive(tmp_path: Path) -> None:
    store = HDF5Store(tmp_path)
    days = [dt.date(2018, 3, d) for d in (3, 1, 31, 2, 5)] + [dt.date(2018, 4, 1), dt.date(2018, 2, 28)]
    for day in days:
        store.write_partition(FUELHH, day, valid_frame(day))
    got = store.read_range(FUELHH, dt.date(2018, 3, 1), dt.date(2018, 3, 3))
    assert got.height == 3 * 672
    assert got["startTime"].is_sorted()
    assert got["settlementDate"].unique().sort().to_list() == [dt.date(2018, 3, d) for d in (1, 2, 3)]
    assert store.read_range(FUELHH, dt.date(2018, 3, 4), dt.date(2018, 3, 4)).height == 0
    assert store.days(FUELHH) == sorted(days)
    across = store.read_range(FUELHH, dt.date(2018, 2, 28), dt.date(2018, 4, 1))
    assert across.height == 7 * 672 and across["startTime"].is_sorted()
    assert store.partition_info(FUELHH, dt.date(2018, 3, 31))["rows"] == 672
    assert store.partition_info(FUELHH, dt.date(2018, 3, 30)) is None


def test_a_half_written_day_from_a_dead_writer_is_invisible_and_cleaned(tmp_path: Path) -> None:
    store = HDF5Store(tmp_path)
    day = dt.date(2018, 3, 1)
    store.write_partition(FUELHH, day, valid_frame(day))
    with h5py.File(store.path(FUELHH), "a") as h5:
        h5["months"].create_group("2018-03.incoming").create_dataset("generation", data=[1, 2, 3])
    assert store.days(FUELHH) == [day]
    assert store.read_range(FUELHH, day, day).height == 672
    store.write_partition(FUELHH, dt.date(2018, 3, 2), valid_frame(dt.date(2018, 3, 2)))
    with h5py.File(store.path(FUELHH), "r") as h5:
        assert sorted(h5["months"]) == ["2018-03"]
    assert store.days(FUELHH) == [day, dt.date(2018, 3, 2)]


def test_a_second_writer_waits_for_the_lock_then_gives_up_clearly(tmp_path: Path) -> None:
    store = HDF5Store(tmp_path, lock_timeout_s=0.2)
    day = dt.date(2018, 3, 1)
    with FileLock(str(store.path(FUELHH)) + ".lock"), pytest.raises(Timeout, match="fuelhh.h5.lock"):
        store.write_partition(FUELHH, day, valid_frame(day))
    assert store.days(FUELHH) == []


def _write_days(root: str, days: list[str]) -> None:
    store = HDF5Store(root)
    for text in days:
        day = dt.date.fromisoformat(text)
        store.write_partition(FUELHH, day, valid_frame(day))


@pytest.mark.integration
def test_concurrent_writer_processes_do_not_corrupt_the_file(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    batches = [[f"2018-05-{d:02d}" for d in range(1, 6)], [f"2018-05-{d:02d}" for d in range(3, 9)]]
    procs = [ctx.Process(target=_write_days, args=(str(tmp_path), b)) for b in batches]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    store = HDF5Store(tmp_path)
    assert store.days(FUELHH) == [dt.date(2018, 5, d) for d in range(1, 9)]
    assert store.read_range(FUELHH, dt.date(2018, 5, 1), dt.date(2018, 5, 8)).height == 8 * 672


def test_a_frame_missing_fields_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="lacks fields \\['generation'\\]"):
        HDF5Store(tmp_path).write_partition(FUELHH, dt.date(2018, 3, 1), valid_frame(dt.date(2018, 3, 1)).drop("generation"))


def test_a_frame_that_breaks_its_schema_or_keys_is_refused(tmp_path: Path) -> None:
    store = HDF5Store(tmp_path)
    day = dt.date(2018, 3, 1)
    good = valid_frame(day)
    with pytest.raises(ValueError, match="refusing to store a frame that fails its schema"):
        store.write_partition(FUELHH, day, good.with_columns(generation=pl.lit(-100_000)))
    with pytest.raises(ValueError, match="1344 rows sharing a key"):
        store.write_partition(FUELHH, day, pl.concat([good, good.with_columns(pl.col("generation") + 1)]))
    assert store.days(FUELHH) == []
