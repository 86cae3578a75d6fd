"""Periods a source never published: found in a fetch, confirmed by fetching again, described for people.

Elexon left some settlement periods of some days unpublished for good (FUELHH 2018-01-23 lacks periods 21, 23, 25 and
26), and an interconnector commissioned mid-day reports from its first period on. Such a day can never be completed,
so refusing it would block every asset downstream for ever. A *cell* is one group (a fuel type, a psrType; ``""`` for
a dataset of one row per period) in one settlement period. The cells missing from a day are a *confirmed gap* when a
second fetch returns the same records' cells and nothing more: the source has what it has. A fetch that failed or came
back short of the first is never a gap (``ingest.fetch_partition`` decides, validation applies it).
"""

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from grid_guardian_assets.datasets import DatasetSpec
from grid_guardian_assets.settlement import period_count

Cell = tuple[str, int]
WHOLE_DATASET = ""  # the group label of a dataset with one row per period (INDO, ITSDO)


def confirmable(spec: DatasetSpec) -> bool:
    """Whether ``spec``'s days can have confirmed gaps: its rows belong to a settlement day and period (FUELHH, INDO,
    ITSDO, AGWS, and B1610 and PN, whose groups, the BM units, need only appear at least once: their cells are
    whole periods)."""
    return spec.membership == "settlement_date"


def group_label(spec: DatasetSpec, record: Mapping[str, Any]) -> str:
    """The cell group of a record: its ``per_period_group`` values joined by ``|`` (``""`` for none)."""
    return "|".join(str(record.get(g)) for g in spec.per_period_group or ())  # "" without groups


def missing_cells(spec: DatasetSpec, day: dt.date, records: Iterable[Mapping[str, Any]]) -> frozenset[Cell]:
    """The cells of settlement ``day`` that ``records`` (API records, other days' ignored) leave empty.

    A group counts when the day reports it in some period; a day with no records misses every period of the whole
    dataset (``WHOLE_DATASET``), whatever its groups would have been. For a dataset without ``per_period_group``
    (B1610, PN) only whole periods are cells.
    """
    if not confirmable(spec):
        raise ValueError(f"{spec.code} rows are not keyed by settlement day and period")
    text = day.isoformat()
    present: dict[str, set[int]] = {}
    for record in records:
        period = record.get("settlementPeriod")
        if str(record.get("settlementDate")) != text or period is None:
            continue
        try:
            present.setdefault(group_label(spec, record), set()).add(int(period))
        except (TypeError, ValueError):
            continue  # validation names a period that is not a number
    expected = range(1, period_count(day) + 1)
    if not present:
        return frozenset((WHOLE_DATASET, p) for p in expected)
    return frozenset((group, p) for group, periods in present.items() for p in expected if p not in periods)


def period_ranges(numbers: Iterable[int]) -> str:
    """``[1, 2, 3, 7]`` → ``"1-3, 7"``."""
    ordered = sorted(set(numbers))
    spans, first = [], None
    for i, n in enumerate(ordered):
        if first is None:
            first = n
        if i + 1 == len(ordered) or ordered[i + 1] != n + 1:
            spans.append(str(first) if first == n else f"{first}-{n}")
            first = None
    return ", ".join(spans)


def describe(cells: Iterable[Cell]) -> dict[str, str]:
    """Group → its missing periods as ranges (``"*"`` for ``WHOLE_DATASET``), for metadata a person reads."""
    by_group: dict[str, list[int]] = {}
    for group, period in cells:
        by_group.setdefault(group, []).append(period)
    return {group or "*": period_ranges(periods) for group, periods in sorted(by_group.items())}


def to_json(cells: Iterable[Cell]) -> list[list[Any]]:
    return [[group, period] for group, period in sorted(cells)]


def from_json(data: Iterable[Iterable[Any]] | None) -> frozenset[Cell] | None:
    if data is None:
        return None
    return frozenset((str(group), int(period)) for group, period in data)
