"""DC power flow: line flows from bus net injections over the network's branch reactances.

The DC approximation (flat voltages, small angles, lossless branches) gives ``P = B θ`` with
``B = Aᵀ diag(1/x) A``. The reduced ``B`` (slack bus removed) is factorised once per network; each settlement
period is then one back-substitution, and a day or a year of periods is solved as one multi-column right-hand side.
"""

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix, csc_matrix
from scipy.sparse.linalg import splu

from grid_guardian_assets.grid.network import BASE_MVA, GridNetwork

# Injections must sum to zero for a lossless DC flow; anything above this (MW) is a caller's bug.
BALANCE_TOLERANCE_MW = 1e-6


@dataclass(frozen=True)
class DCFlow:
    """Flows of one or more periods. Arrays are ``(T, E)``; ``loading`` is ``|flow| / rating`` (NaN if unrated)."""

    flow_mw: np.ndarray
    loading: np.ndarray
    angle_rad: np.ndarray


class DCPowerFlow:
    """A factorised DC power flow for one network.

    Args:
        network: The network; it must be connected and every branch must have a positive reactance.
    """

    def __init__(self, network: GridNetwork):
        if np.any(network.x <= 0):
            bad = np.flatnonzero(network.x <= 0)[:5].tolist()
            raise ValueError(f"network {network.name}: branches {bad} have non-positive reactance; DC flow needs x > 0")
        if network.components() != 1:
            raise ValueError(f"network {network.name} is split into {network.components()} islands; DC flow needs one")
        self.network = network
        n, e = network.n_buses, network.n_branches
        rows = np.arange(e)
        incidence = coo_matrix(
            (np.r_[np.ones(e), -np.ones(e)], (np.r_[rows, rows], np.r_[network.from_bus, network.to_bus])), shape=(e, n)
        ).tocsr()
        self._incidence = incidence
        self._susceptance = 1.0 / network.x
        bbus = (incidence.T @ coo_matrix((self._susceptance, (rows, rows)), shape=(e, e)) @ incidence).tocsc()
        self._keep = np.array([i for i in range(n) if i != network.slack_bus])
        self._lu = splu(csc_matrix(bbus[self._keep][:, self._keep]))
        with np.errstate(divide="ignore", invalid="ignore"):
            self._inverse_rating = np.where(network.rating_mva > 0, 1.0 / network.rating_mva, np.nan)

    @property
    def susceptance_pu(self) -> np.ndarray:
        return self._susceptance

    def solve(self, injection_mw: np.ndarray) -> DCFlow:
        """Flows for net injections ``(N,)`` or ``(T, N)`` in MW (generation positive); each row must sum to 0."""
        p = np.atleast_2d(np.asarray(injection_mw, dtype=float))
        if p.shape[1] != self.network.n_buses:
            raise ValueError(f"injections have {p.shape[1]} buses; network {self.network.name} has {self.network.n_buses}")
        imbalance = np.abs(p.sum(axis=1))
        if np.any(imbalance > BALANCE_TOLERANCE_MW * max(1.0, np.abs(p).max())):
            raise ValueError(f"injections do not sum to zero (worst period off by {imbalance.max():.3f} MW)")
        theta = np.zeros_like(p)
        theta[:, self._keep] = self._lu.solve(np.ascontiguousarray(p[:, self._keep].T / BASE_MVA)).T
        flow = (self._incidence @ theta.T).T * self._susceptance * BASE_MVA
        return DCFlow(flow_mw=flow, loading=np.abs(flow) * self._inverse_rating, angle_rad=theta)

    def bus_balance(self, flow_mw: np.ndarray) -> np.ndarray:
        """Net flow out of each bus, ``(T, N)``: equals the injection wherever Kirchhoff's current law holds."""
        return (self._incidence.T @ np.atleast_2d(flow_mw).T).T
