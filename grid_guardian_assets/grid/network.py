"""GB transmission networks as arrays: buses, branches (lines and transformers) in per unit on 100 MVA.

Two networks ship:

* ``gb29`` (default): the 29-bus reduced GB model (Bukhsh & McKinnon, Strathclyde; via PyPSA-GB, MIT) with named
  substations at their real WGS84 coordinates, 99 branches with ratings, and a demand distribution.
* ``gb2224``: the 2,224-bus GB network that pandapower ships (``pandapower.networks.GBnetwork()``, BSD-3). Its bus
  names are integers and its coordinates are a synthetic layout, **not geography**.
"""

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import polars as pl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

BASE_MVA = 100.0
NETWORKS = ("gb29", "gb2224")
# (buses, branches) each network must have: the grid_topology asset checks them.
EXPECTED_SIZE = {"gb29": (29, 99), "gb2224": (2224, 3207)}


@dataclass(frozen=True, eq=False)
class GridNetwork:
    """A transmission network as arrays.

    Attributes:
        name: ``gb29`` or ``gb2224``.
        bus_names: One name per bus, in bus order.
        coords: ``(N, 2)`` longitude/latitude (``geographic``) or a synthetic layout.
        geographic: Whether ``coords`` are real WGS84 positions.
        from_bus, to_bus: ``(E,)`` branch end bus indices.
        r, x, b: ``(E,)`` branch resistance, reactance and charging susceptance in per unit on ``BASE_MVA``.
        rating_mva: ``(E,)`` branch thermal rating (0 where the source gives none).
        demand_weights: ``(N,)`` share of national demand at each bus (sums to 1).
        slack_bus: Reference bus of the power flow.
        generator_mw: ``(N,)`` total generator rating at each bus (used where no fuel mapping exists).
    """

    name: str
    bus_names: tuple[str, ...]
    coords: np.ndarray
    geographic: bool
    from_bus: np.ndarray
    to_bus: np.ndarray
    r: np.ndarray
    x: np.ndarray
    b: np.ndarray
    rating_mva: np.ndarray
    demand_weights: np.ndarray
    slack_bus: int
    generator_mw: np.ndarray

    @property
    def n_buses(self) -> int:
        return len(self.bus_names)

    @property
    def n_branches(self) -> int:
        return len(self.from_bus)

    def bus_index(self, name: str) -> int:
        try:
            return self.bus_names.index(name)
        except ValueError:
            raise KeyError(f"network {self.name} has no bus named {name!r}") from None

    def components(self) -> int:
        """How many connected pieces the branch graph has (1 for a connected network)."""
        adjacency = coo_matrix((np.ones(self.n_branches), (self.from_bus, self.to_bus)), shape=(self.n_buses,) * 2)
        return int(connected_components(adjacency, directed=False)[0])

    def __repr__(self) -> str:
        return f"GridNetwork({self.name!r}, buses={self.n_buses}, branches={self.n_branches}, geographic={self.geographic})"


def _data(name: str) -> Path:
    return Path(str(resources.files("grid_guardian_assets") / "data" / "gb_reduced_network" / name))


@cache
def reduced_network() -> GridNetwork:
    """The 29-bus reduced GB model from the bundled CSVs."""
    buses = pl.read_csv(_data("buses_wgs84.csv"))
    lines = pl.read_csv(_data("lines.csv"))
    weights = pl.read_csv(_data("reduced_bus_definitions.csv"))
    names = tuple(buses["name"].to_list())
    index = {n: i for i, n in enumerate(names)}
    unknown = sorted((set(lines["bus0"]) | set(lines["bus1"]) | set(weights["bus_name"])) - set(names))
    if unknown:
        raise ValueError(f"gb29 data names buses that buses_wgs84.csv lacks: {unknown}")
    demand = np.zeros(len(names))
    for row in weights.iter_rows(named=True):
        demand[index[row["bus_name"]]] = row["demand_weight"]
    from grid_guardian_assets.grid.mapping import station_capacity  # the stations table lives with the mapping

    generator = station_capacity().group_by("bus").agg(pl.col("capacity_mw").sum())
    generator_mw = np.zeros(len(names))
    for row in generator.iter_rows(named=True):
        generator_mw[index[row["bus"]]] = row["capacity_mw"]
    return GridNetwork(
        name="gb29",
        bus_names=names,
        coords=buses.select("x", "y").to_numpy(),
        geographic=True,
        from_bus=np.array([index[n] for n in lines["bus0"]]),
        to_bus=np.array([index[n] for n in lines["bus1"]]),
        r=lines["r"].to_numpy().astype(float),
        x=lines["x"].to_numpy().astype(float),
        b=lines["b"].to_numpy().astype(float),
        rating_mva=lines["s_nom"].to_numpy().astype(float),
        demand_weights=demand / demand.sum(),
        slack_bus=index["Sellindge"],  # pandapower's GBreducednetwork() puts its external grid here
        generator_mw=generator_mw,
    )


def network_from_pandapower(net: object, name: str) -> GridNetwork:
    """A pandapower network's branches exactly as pandapower's own DC power flow sees them (its ``_ppc``).

    Transformer phase shifts are not carried: this DC model has none.
    """
    import pandapower as pp
    from pandapower.pypower.idx_brch import BR_B, BR_R, BR_STATUS, BR_X, F_BUS, RATE_A, T_BUS

    pp.rundcpp(net, numba=False)  # builds net._ppc: the per-unit branch model pandapower solves
    branch = net._ppc["branch"]
    branch = branch[branch[:, BR_STATUS].real > 0]
    ppc_of_bus = net._pd2ppc_lookups["bus"]
    bus_of_ppc = {int(ppc_of_bus[b]): i for i, b in enumerate(net.bus.index)}
    geo = net.bus.geo if "geo" in net.bus else [None] * len(net.bus)
    coords = np.array([json.loads(g)["coordinates"] if isinstance(g, str) else [np.nan, np.nan] for g in geo])
    load = net.load[net.load.in_service].groupby("bus").p_mw.sum()
    demand = np.array([max(load.get(b, 0.0), 0.0) for b in net.bus.index])
    gens = net.gen[net.gen.in_service].groupby("bus").max_p_mw.sum()
    return GridNetwork(
        name=name,
        bus_names=tuple(str(n) for n in net.bus.name),
        coords=coords,
        geographic=False,
        from_bus=np.array([bus_of_ppc[int(f)] for f in branch[:, F_BUS].real]),
        to_bus=np.array([bus_of_ppc[int(t)] for t in branch[:, T_BUS].real]),
        r=branch[:, BR_R].real.astype(float),
        x=branch[:, BR_X].real.astype(float),
        b=branch[:, BR_B].real.astype(float),
        rating_mva=branch[:, RATE_A].real.astype(float),
        demand_weights=demand / demand.sum(),
        slack_bus=int(bus_of_ppc[int(ppc_of_bus[net.ext_grid.bus.iloc[0]])]),
        generator_mw=np.array([gens.get(b, 0.0) for b in net.bus.index]),
    )


@cache
def pandapower_gb_network() -> GridNetwork:
    """The 2,224-bus GB network that pandapower ships (integer bus names, synthetic layout)."""
    import pandapower.networks as pn

    return network_from_pandapower(pn.GBnetwork(), "gb2224")


def load_network(name: str = "gb29") -> GridNetwork:
    """A network by name, with an error listing the known ones."""
    if name == "gb29":
        return reduced_network()
    if name == "gb2224":
        return pandapower_gb_network()
    raise KeyError(f"unknown grid network {name!r}; known: {', '.join(NETWORKS)}")
