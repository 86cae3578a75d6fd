"""Where national BMRS signals land on the network's buses.

* Interconnector flows (FUELHH ``INT*`` fuel types) land on their landing bus.
* Generation of every other fuel type is spread over buses in proportion to the installed capacity of that fuel at
  each bus (``data/gb_reduced_network/stations_2018.csv`` for ``gb29``; see its header for sources).
* National demand (INDO) is spread by the network's demand distribution.

On ``gb2224`` the buses carry no fuel types or geography: every fuel type is spread by generator rating and every
interconnector over the same buses; the mapping says so (``fuel_resolved=False``).
"""

from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

if TYPE_CHECKING:  # scipy: only where a network is built
    from grid_guardian_assets.grid.network import GridNetwork

# Generation fuel types of FUELHH, in the order they appear as node features.
GENERATION_FUELS = ("CCGT", "OCGT", "OIL", "COAL", "NUCLEAR", "WIND", "PS", "NPSHYD", "BIOMASS", "OTHER")

# B1610's ENTSO-E production types (psrType) → the FUELHH fuel types they meter ("Fossil Gas" covers CCGT and OCGT);
# an unlisted production type counts as OTHER.
PSR_FUELS = {
    "Fossil Gas": ("CCGT", "OCGT"),
    "Fossil Hard coal": ("COAL",),
    "Fossil Oil": ("OIL",),
    "Nuclear": ("NUCLEAR",),
    "Wind Offshore": ("WIND",),
    "Wind Onshore": ("WIND",),
    "Hydro Run-of-river and poundage": ("NPSHYD",),
    "Hydro Pumped Storage": ("PS",),
    "Biomass": ("BIOMASS",),
    "Other": ("OTHER",),
}

# Landing buses of the interconnectors on the 29-bus model. The first six follow links.csv (IFA and Nemo at
# Sellindge, IFA2 at Lovedean, BritNed at Kemsley, East-West at Deeside, Moyle at Neilston). Later interconnectors
# land at the nearest bus of the model: ElecLink (Folkestone) at Sellindge, North Sea Link (Blyth) at Stella West,
# Viking (Bicker Fen, Lincolnshire) at Walpole, Greenlink (Pembroke) at Melksham, the bus that serves South Wales.
INTERCONNECTOR_BUSES = {
    "INTFR": "Sellindge",
    "INTNEM": "Sellindge",
    "INTIFA2": "Lovedean",
    "INTNED": "Kemsley",
    "INTEW": "Deeside",
    "INTIRL": "Neilston",
    "INTELEC": "Sellindge",
    "INTNSL": "Stella West",
    "INTVKL": "Walpole",
    "INTGRNL": "Melksham",
}


class UnknownFuelTypeError(KeyError):
    """A FUELHH fuel type with no bus to land on: never dropped silently."""

    def __str__(self) -> str:
        return str(self.args[0])


def _stations_path() -> Path:
    return Path(str(resources.files("grid_guardian_assets") / "data" / "gb_reduced_network" / "stations_2018.csv"))


@cache
def station_capacity() -> pl.DataFrame:
    """The bundled station table: station, fuel_type, capacity_mw, bus."""
    return pl.read_csv(_stations_path(), comment_prefix="#")


@dataclass(frozen=True, eq=False)
class BusMapping:
    """Weights that spread each national signal over the buses of one network (each row sums to 1).

    Attributes:
        network: The network mapped onto.
        fuel_weights: ``{fuelType: (N,) weights}`` for generation fuels and interconnectors.
        fuel_resolved: Whether weights differ by fuel type (``False`` on ``gb2224``).
    """

    network: "GridNetwork"
    fuel_weights: dict[str, np.ndarray] = field(default_factory=dict)
    fuel_resolved: bool = True

    def weights(self, fuel_type: str) -> np.ndarray:
        try:
            return self.fuel_weights[fuel_type]
        except KeyError:
            raise UnknownFuelTypeError(
                f"fuel type {fuel_type!r} has no bus mapping on network {self.network.name}; "
                f"known: {', '.join(sorted(self.fuel_weights))}"
            ) from None

    @property
    def demand_weights(self) -> np.ndarray:
        return self.network.demand_weights

    def landing_buses(self, fuel_type: str) -> list[str]:
        return [self.network.bus_names[i] for i in np.flatnonzero(self.weights(fuel_type))]


def _one_hot(network: "GridNetwork", bus: str) -> np.ndarray:
    w = np.zeros(network.n_buses)
    w[network.bus_index(bus)] = 1.0
    return w


def bus_mapping(network: "GridNetwork") -> BusMapping:
    """The mapping of BMRS signals onto ``network``'s buses."""
    if network.name == "gb29":
        stations = station_capacity()
        weights: dict[str, np.ndarray] = {}
        for fuel in GENERATION_FUELS:
            rows = stations.filter(pl.col("fuel_type") == fuel)
            if rows.height == 0:
                raise ValueError(f"stations_2018.csv lists no {fuel} capacity; every generation fuel needs a bus")
            w = np.zeros(network.n_buses)
            for row in rows.iter_rows(named=True):
                w[network.bus_index(row["bus"])] += row["capacity_mw"]
            weights[fuel] = w / w.sum()
        for fuel, bus in INTERCONNECTOR_BUSES.items():
            weights[fuel] = _one_hot(network, bus)
        return BusMapping(network, weights, fuel_resolved=True)
    spread = network.generator_mw / network.generator_mw.sum()
    return BusMapping(network, {f: spread for f in (*GENERATION_FUELS, *INTERCONNECTOR_BUSES)}, fuel_resolved=False)
