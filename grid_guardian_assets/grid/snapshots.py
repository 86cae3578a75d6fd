"""Grid snapshots: for every settlement period, BMRS signals on buses and the DC power flow they imply.

Per period ``t`` of a settlement day:

* node features ``(N, F)``: generation of each fuel type at the bus (MW), net interconnector import, demand,
  and net injection (generation + import − demand − the bus's share of losses);
* edge features ``(E, 3)``: branch susceptance (per unit), DC flow (MW, from → to), loading (|flow| / rating);
* graph features: mean system frequency over the period (Hz), the period's sample farthest from nominal, and the
  national balance.

National balance: supply (all FUELHH generation, pumping negative, plus net imports) minus INDO demand leaves
transmission losses, station load, pumping and exports (INDO, NESO's National Demand, excludes the last three).
A period "balances" when that residual is between ``LOSS_MIN`` and ``LOSS_MAX`` of supply (``grid.physics`` says
how the band was measured). For the lossless DC flow the residual is spread over buses like demand, so injections
sum to zero and flows close Kirchhoff's current law at every bus.

A period that FUELHH or INDO lacks (one Elexon never published, stored with its day's recorded gap) is masked: every
array holds NaN there (``SnapshotDay.masked``), and nothing downstream learns from or scores it.
"""

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from grid_guardian_assets.grid.mapping import GENERATION_FUELS, BusMapping
from grid_guardian_assets.grid.physics import LOSS_MAX, LOSS_MIN, NOMINAL_FREQUENCY_HZ
from grid_guardian_assets.settlement import PERIOD, settlement_periods

if TYPE_CHECKING:  # scipy: only where a flow is solved
    from grid_guardian_assets.grid.dcflow import DCPowerFlow

NODE_FEATURES = (*(f"gen_{f.lower()}" for f in GENERATION_FUELS), "net_import", "demand", "net_injection")
EDGE_FEATURES = ("susceptance_pu", "flow_mw", "loading")
NET_INJECTION = NODE_FEATURES.index("net_injection")


class SnapshotInputError(ValueError):
    """The stored BMRS inputs of a day cannot make snapshots (missing day or periods)."""


@dataclass
class SnapshotDay:
    """The snapshots of one settlement day on one network (arrays indexed by period first)."""

    day: dt.date
    network: str
    periods: np.ndarray  # (T,) settlement period numbers
    start_us: np.ndarray  # (T,) period start, µs since the epoch, UTC
    node_features: np.ndarray  # (T, N, F) float32
    edge_features: np.ndarray  # (T, E, 3) float32
    frequency_hz: np.ndarray  # (T,) mean of the period's FREQ samples; NaN where no reading fell in the period
    frequency_extreme_hz: np.ndarray  # (T,) the period's FREQ sample farthest from nominal (what the band rule judges)
    supply_mw: np.ndarray  # (T,)
    demand_mw: np.ndarray  # (T,)

    @property
    def masked(self) -> np.ndarray:
        """``(T,)`` True where the period's inputs were missing (its arrays are NaN)."""
        return ~np.isfinite(self.supply_mw) | ~np.isfinite(self.demand_mw)

    @property
    def whole(self) -> bool:
        """No period is masked."""
        return not self.masked.any()

    @property
    def residual_mw(self) -> np.ndarray:
        return self.supply_mw - self.demand_mw

    @property
    def loss_ratio(self) -> np.ndarray:
        return self.residual_mw / self.supply_mw

    @property
    def balanced(self) -> np.ndarray:
        return (self.loss_ratio >= LOSS_MIN) & (self.loss_ratio <= LOSS_MAX)

    @property
    def overloads(self) -> np.ndarray:
        """``(T, E)`` True where a branch is loaded above its rating."""
        return np.nan_to_num(self.edge_features[:, :, 2], nan=0.0) > 1.0

    def unbalanced_periods(self) -> pl.DataFrame:
        mask = ~self.balanced & ~self.masked
        return pl.DataFrame(
            {
                "settlementPeriod": self.periods[mask],
                "supply_mw": self.supply_mw[mask].round(1),
                "demand_mw": self.demand_mw[mask].round(1),
                "residual_mw": self.residual_mw[mask].round(1),
                "loss_ratio": self.loss_ratio[mask].round(4),
            }
        )


def _require(frame: pl.DataFrame, what: str, day: dt.date, stored_empty: bool) -> None:
    if frame.height == 0 and not stored_empty:
        raise SnapshotInputError(f"{what} for {day} is not in the store: its partition failed validation or was not materialised")


def build_snapshot_day(
    day: dt.date,
    mapping: BusMapping,
    flow: "DCPowerFlow",
    fuelhh: pl.DataFrame,
    indo: pl.DataFrame,
    freq: pl.DataFrame | None = None,
    *,
    stored_empty: frozenset[str] = frozenset(),
) -> SnapshotDay:
    """Snapshots of every settlement period of ``day`` from its validated FUELHH, INDO and (optional) FREQ rows.

    ``stored_empty``: the inputs (``FUELHH``, ``INDO``) stored for the day with no rows at all, a whole day their source
    confirmed it does not have (2018-11-09's INDO): every period is masked rather than the day refused.
    """
    periods = settlement_periods(day)
    t_count = len(periods)
    _require(fuelhh, "FUELHH", day, "FUELHH" in stored_empty)
    _require(indo, "INDO", day, "INDO" in stored_empty)
    numbers = pl.DataFrame({"settlementPeriod": [p.number for p in periods]})
    wide = numbers.join(
        fuelhh.pivot(on="fuelType", index="settlementPeriod", values="generation", aggregate_function="first"),
        on="settlementPeriod", how="left",
    )
    demand = numbers.join(indo.select("settlementPeriod", "demand"), on="settlementPeriod", how="left")["demand"]
    # A period is known when FUELHH has some row in it and INDO its demand; the others stay NaN (masked).
    known = (wide.drop("settlementPeriod").select(pl.any_horizontal(pl.all().is_not_null())).to_series() & demand.is_not_null()).to_numpy()
    network = mapping.network
    node = np.full((t_count, network.n_buses, len(NODE_FEATURES)), np.nan)
    edge = np.full((t_count, network.n_branches, len(EDGE_FEATURES)), np.nan)
    supply, demand_national = np.full(t_count, np.nan), np.full(t_count, np.nan)
    if known.any():
        national = {f: wide[f].fill_null(0).to_numpy()[known].astype(float) for f in wide.columns if f != "settlementPeriod"}
        demand_national[known] = demand.to_numpy()[known].astype(float)
        node[known], edge[known], supply[known] = period_arrays(mapping, flow, national, demand_national[known])
    starts = np.array([int(p.start.timestamp() * 1_000_000) for p in periods])
    frequency = period_frequency(freq, periods)
    return SnapshotDay(
        day=day,
        network=mapping.network.name,
        periods=np.array([p.number for p in periods]),
        start_us=starts,
        node_features=node.astype(np.float32),
        edge_features=edge.astype(np.float32),
        frequency_hz=frequency[0],
        frequency_extreme_hz=frequency[1],
        supply_mw=supply,
        demand_mw=demand_national,
    )


def period_arrays(
    mapping: BusMapping, flow: "DCPowerFlow", national: dict[str, np.ndarray], demand_national: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Node features ``(T, N, F)``, edge features ``(T, E, 3)`` and national supply ``(T,)`` of ``T`` periods.

    Args:
        mapping: How national signals spread over the buses.
        flow: The DC power flow of the same network.
        national: ``{fuelType: (T,) MW}`` FUELHH generation (interconnectors as ``INT*``; negative = export).
        demand_national: ``(T,)`` INDO demand, MW.
    """
    network = mapping.network
    t_count, n = len(demand_national), network.n_buses
    gen = np.zeros((t_count, n, len(GENERATION_FUELS)))
    net_import = np.zeros((t_count, n))
    for fuel, series in national.items():
        weights = mapping.weights(fuel)  # an unknown fuel type raises, never drops
        if fuel.startswith("INT"):
            net_import += np.outer(series, weights)
        else:
            gen[:, :, GENERATION_FUELS.index(fuel)] += np.outer(series, weights)
    supply = sum(national.values(), np.zeros(t_count))
    demand = np.outer(demand_national, mapping.demand_weights)
    losses = np.outer(supply - demand_national, mapping.demand_weights)
    injection = gen.sum(axis=2) + net_import - demand - losses
    dc = flow.solve(injection)
    node = np.concatenate([gen, net_import[..., None], demand[..., None], injection[..., None]], axis=2)
    susceptance = np.broadcast_to(flow.susceptance_pu, (t_count, network.n_branches))
    edge = np.stack([susceptance, dc.flow_mw, dc.loading], axis=2)
    return node, edge, supply


def period_frequency(freq: pl.DataFrame | None, periods: list) -> tuple[np.ndarray, np.ndarray]:
    """``(T,)`` mean of each period's FREQ samples and ``(T,)`` its sample farthest from nominal (NaN where none)."""
    mean, extreme = np.full(len(periods), np.nan), np.full(len(periods), np.nan)
    if freq is None or freq.height == 0:
        return mean, extreme
    start = periods[0].start
    index = ((freq["measurementTime"] - pl.lit(start)).dt.total_seconds() // PERIOD.total_seconds()).cast(pl.Int64)
    by_period = freq.with_columns(index.alias("i")).group_by("i").agg(
        pl.col("frequency").mean().alias("mean"),
        pl.col("frequency").sort_by((pl.col("frequency") - NOMINAL_FREQUENCY_HZ).abs()).last().alias("extreme"),
    )
    for i, m, e in zip(by_period["i"].to_list(), by_period["mean"].to_list(), by_period["extreme"].to_list()):
        if 0 <= i < len(periods):
            mean[i], extreme[i] = m, e
    return mean, extreme
