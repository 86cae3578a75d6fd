"""Small renderings for people: markdown tables and inline PNG plots of a partition.

matplotlib is imported by the plotting functions, not by this module: the code location imports this module for
its tables, and every Dagster run process would otherwise pay for matplotlib.
"""

import base64
import io
from typing import TYPE_CHECKING

import polars as pl

from grid_guardian_assets.datasets import DatasetSpec
from grid_guardian_assets.grid.physics import FREQUENCY_OPERATIONAL_BAND_HZ, FREQUENCY_STATUTORY_BAND_HZ, NOMINAL_FREQUENCY_HZ

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.figure import Figure

    from grid_guardian_assets.grid.network import GridNetwork


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    return plt


def markdown_table(frame: pl.DataFrame, limit: int = 20) -> str:
    """The first ``limit`` rows as a markdown table (values shown as text, pipes escaped)."""
    head = frame.head(limit)
    lines = ["| " + " | ".join(head.columns) + " |", "|" + "---|" * len(head.columns)]
    for row in head.iter_rows():
        lines.append("| " + " | ".join("" if v is None else str(v).replace("|", "\\|") for v in row) + " |")
    if frame.height > limit:
        lines.append(f"\n_{frame.height - limit} more rows not shown_")
    return "\n".join(lines)


def _png_markdown(fig: "Figure", alt: str) -> str:
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return f"![{alt}](data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()})"


def partition_plot(spec: DatasetSpec, frame: pl.DataFrame, title: str) -> str | None:
    """A markdown image of the partition: generation mix, frequency, demand or unit totals over the day."""
    if frame.height == 0:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.2))
    t = spec.time_field
    if spec.code == "FUELHH":
        wide = frame.pivot(on="fuelType", index=t, values="generation", aggregate_function="first").sort(t).fill_null(0)
        fuels = [c for c in wide.columns if c != t]
        # Signed: pumping and exports stack below zero, generation and imports above.
        positive = [wide[f].clip(lower_bound=0).to_numpy() / 1000 for f in fuels]
        negative = [wide[f].clip(upper_bound=0).to_numpy() / 1000 for f in fuels]
        ax.stackplot(wide[t].to_numpy(), positive, labels=fuels)
        ax.stackplot(wide[t].to_numpy(), negative)
        ax.axhline(0, color="black", lw=0.5)
        ax.set_ylabel("GW")
        ax.legend(fontsize=6, ncol=5, loc="upper left")
    elif spec.code == "FREQ":
        ax.plot(frame[t].to_numpy(), frame["frequency"].to_numpy(), lw=0.6)
        for band, style in ((FREQUENCY_OPERATIONAL_BAND_HZ, ":"), (FREQUENCY_STATUTORY_BAND_HZ, "--")):
            for level in (NOMINAL_FREQUENCY_HZ - band, NOMINAL_FREQUENCY_HZ + band):
                ax.axhline(level, color="red", ls=style, lw=0.8)
        ax.set_ylabel("Hz")
    else:
        value = spec.value_fields[0]
        totals = frame.group_by(t).agg(pl.col(value).sum()).sort(t)
        ax.plot(totals[t].to_numpy(), totals[value].to_numpy())
        ax.set_ylabel(f"total {value}")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("UTC")
    fig.autofmt_xdate()
    return _png_markdown(fig, title)


def network_map(network: "GridNetwork", branch_value: "np.ndarray", bus_value: "np.ndarray", title: str) -> str:
    import numpy as np  # numpy and matplotlib load where a figure is drawn, not with the code location

    """A markdown image of the network: branches coloured by ``branch_value`` (e.g. mean loading), buses by
    ``bus_value`` (e.g. mean net injection, MW). On real geography (WGS84) when the network has it."""
    from matplotlib.collections import LineCollection
    from matplotlib.colors import TwoSlopeNorm

    plt = _pyplot()
    coords = network.coords
    segments = np.stack([coords[network.from_bus], coords[network.to_bus]], axis=1)
    fig, ax = plt.subplots(figsize=(6, 7.5) if network.geographic else (7, 6))
    lines = LineCollection(segments, array=np.nan_to_num(branch_value), cmap="plasma", linewidths=2 if network.n_buses < 100 else 0.4)
    lines.set_clim(0, max(1.0, float(np.nanmax(branch_value)) if np.isfinite(branch_value).any() else 1.0))
    ax.add_collection(lines)
    fig.colorbar(lines, ax=ax, orientation="horizontal", fraction=0.04, pad=0.08, label="mean loading (|flow| / rating)")
    limit = float(np.nanmax(np.abs(bus_value))) or 1.0
    dots = ax.scatter(coords[:, 0], coords[:, 1], c=bus_value, cmap="coolwarm", norm=TwoSlopeNorm(0, -limit, limit),
                      s=40 if network.n_buses < 100 else 4, edgecolors="black", linewidths=0.4, zorder=3)
    fig.colorbar(dots, ax=ax, fraction=0.04, pad=0.02, label="mean net injection (MW)")
    if network.n_buses < 100:
        for (lon, lat), name in zip(coords, network.bus_names):
            ax.annotate(name, (lon, lat), fontsize=5, xytext=(3, 2), textcoords="offset points")
    if network.geographic:
        ax.set_xlabel("longitude (WGS84)")
        ax.set_ylabel("latitude (WGS84)")
        ax.set_aspect(1 / np.cos(np.deg2rad(np.nanmean(coords[:, 1]))))
    else:
        ax.set_title("synthetic layout — not geography", fontsize=7, loc="right")
        ax.set_aspect("equal")
    ax.autoscale()
    ax.set_title(title, fontsize=9, loc="left")
    return _png_markdown(fig, title)


def self_play_figure(history: list[dict], by_type: pl.DataFrame) -> "Figure":
    """Four panels of a self-play run: solve rate by type (this round), proposer reward, F1 on the validation
    benchmark (what promotion decides on) and the carried solver's held-out F1, and the proposer's type distribution
    across rounds."""
    import numpy as np

    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    rounds = [h["round"] for h in history]
    kinds = by_type["type"].to_list()
    axes[0, 0].barh(kinds, [v if v is not None else 0 for v in by_type["solve_rate"].to_list()], color="#4c72b0")
    axes[0, 0].set(title=f"Solve rate by type, round {rounds[-1]}", xlim=(0, 1))
    axes[0, 1].plot(rounds, [h["mean_proposer_reward"] for h in history], marker="o")
    axes[0, 1].set(title="Mean proposer reward (learnability)", xlabel="round")
    # Rounds from before the validation split have no such figures: they are gaps, not zeros.
    def f1(key: str) -> list[float]:
        return [h.get(key, float("nan")) for h in history]

    axes[1, 0].plot(rounds, f1("f1_validation_candidate"), marker="o", label="candidate solver (validation)")
    axes[1, 0].plot(rounds, f1("f1_validation_carried"), marker="s", label="carried, promoted or kept (validation)")
    axes[1, 0].plot(rounds, f1("f1_validation_three_sigma"), linestyle="--", label="3-sigma rule (validation)")
    axes[1, 0].plot(rounds, f1("f1_held_out_carried"), marker="^", linestyle=":", label="carried (held-out: reported only)")
    axes[1, 0].set(title="Event-wise F1 on the frozen benchmarks", xlabel="round")
    axes[1, 0].legend(fontsize=8)
    probabilities = np.array([[h["type_probabilities"][k] for k in kinds] for h in history])
    axes[1, 1].stackplot(rounds, probabilities.T, labels=kinds)
    axes[1, 1].set(title="Proposer's distribution over types (after each round)", xlabel="round", ylim=(0, 1))
    axes[1, 1].legend(fontsize=6, loc="upper left")
    for ax in axes[0, 1], axes[1, 0], axes[1, 1]:
        ax.set_xticks(rounds)
    fig.tight_layout()
    return fig


def figure_markdown(fig: "Figure", alt: str) -> str:
    return _png_markdown(fig, alt)
