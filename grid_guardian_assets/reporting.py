"""Small renderings for people: markdown tables and inline PNG plots of a partition."""

import base64
import io

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402

from grid_guardian_assets.datasets import DatasetSpec  # noqa: E402


def markdown_table(frame: pl.DataFrame, limit: int = 20) -> str:
    """The first ``limit`` rows as a markdown table (values shown as text, pipes escaped)."""
    head = frame.head(limit)
    lines = ["| " + " | ".join(head.columns) + " |", "|" + "---|" * len(head.columns)]
    for row in head.iter_rows():
        lines.append("| " + " | ".join("" if v is None else str(v).replace("|", "\\|") for v in row) + " |")
    if frame.height > limit:
        lines.append(f"\n_{frame.height - limit} more rows not shown_")
    return "\n".join(lines)


def _png_markdown(fig: plt.Figure, alt: str) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return f"![{alt}](data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()})"


def partition_plot(spec: DatasetSpec, frame: pl.DataFrame, title: str) -> str | None:
    """A markdown image of the partition: generation mix, frequency, demand or unit totals over the day."""
    if frame.height == 0:
        return None
    fig, ax = plt.subplots(figsize=(8, 3.2))
    t = spec.time_field
    if spec.code == "FUELHH":
        wide = frame.pivot(on="fuelType", index=t, values="generation", aggregate_function="first").sort(t).fill_null(0)
        fuels = [c for c in wide.columns if c != t]
        positive = [wide[f].clip(lower_bound=0).to_numpy() / 1000 for f in fuels]
        ax.stackplot(wide[t].to_numpy(), positive, labels=fuels)
        ax.set_ylabel("GW")
        ax.legend(fontsize=6, ncol=5, loc="upper left")
    elif spec.code == "FREQ":
        ax.plot(frame[t].to_numpy(), frame["frequency"].to_numpy(), lw=0.6)
        for level, style in ((49.8, ":"), (50.2, ":"), (49.5, "--"), (50.5, "--")):
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
