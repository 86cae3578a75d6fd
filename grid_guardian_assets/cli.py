"""``grid-guardian``: the operator's and analyst's console commands."""

import sys
from pathlib import Path
from typing import Annotated, Optional

import polars as pl
import typer

from grid_guardian_assets.config import default_data_dir
from grid_guardian_assets.datasets import DATASETS, dataset_spec
from grid_guardian_assets.settlement import parse_day
from grid_guardian_assets.store.hdf5 import HDF5Store

app = typer.Typer(help="Grid Guardian: anomaly detection for the GB electricity grid.", no_args_is_help=True)
store_app = typer.Typer(help="Read the validated BMRS stores.", no_args_is_help=True)
replay_app = typer.Typer(help="The local server that answers like the Elexon Insights API.", no_args_is_help=True)
app.add_typer(store_app, name="store")
app.add_typer(replay_app, name="replay")

# Fields the store keeps for provenance but an analyst rarely wants in a table.
_BOOKKEEPING_FIELDS = ("dataset", "publishTime")


def _api_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Times and dates in the Insights API's own text forms (``2018-03-01T00:00:00Z``, ``2018-03-01``)."""
    return frame.with_columns(
        [pl.col(c).dt.strftime("%Y-%m-%dT%H:%M:%SZ") for c, t in frame.schema.items() if isinstance(t, pl.Datetime)]
        + [pl.col(c).dt.strftime("%Y-%m-%d") for c, t in frame.schema.items() if t == pl.Date]
    )


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


@store_app.command("read")
def store_read(
    dataset: Annotated[str, typer.Argument(help=f"One of {', '.join(DATASETS)}.")],
    start: Annotated[str, typer.Option(help="First settlement day, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option(help="Last settlement day (inclusive), YYYY-MM-DD.")],
    fmt: Annotated[str, typer.Option("--format", help="csv or json (one object per line).")] = "csv",
    all_fields: Annotated[bool, typer.Option("--all-fields", help="Also print dataset and publishTime.")] = False,
    data_dir: Annotated[Optional[Path], typer.Option(help="Data folder (default: $GRID_GUARDIAN_DATA_DIR or ~/.grid_guardian).")] = None,
) -> None:
    """Print the validated rows of settlement days START..END, sorted by time, with the API's field names."""
    try:
        spec = dataset_spec(dataset)
        first, last = parse_day(start), parse_day(end)
        if last < first:
            raise ValueError(f"--end {last} is before --start {first}")
    except (KeyError, ValueError) as exc:
        _fail(str(exc.args[0]) if exc.args else str(exc))
    if fmt not in ("csv", "json"):
        _fail(f"--format must be csv or json, not {fmt!r}")
    store = HDF5Store((data_dir or default_data_dir()) / "hdf5")
    frame = store.read_range(spec, first, last)
    if not all_fields:
        frame = frame.select([f for f in spec.fields if f not in _BOOKKEEPING_FIELDS])
    if frame.height == 0:
        typer.echo(f"note: no stored {spec.code} rows for {first}..{last} in {store.path(spec)}", err=True)
    text = _api_text(frame)
    if fmt == "csv":
        sys.stdout.write(text.write_csv())
    else:
        sys.stdout.write(text.write_ndjson())


@replay_app.command("serve")
def replay_serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind (0 picks a free one).")] = 8765,
) -> None:
    """Serve the bundled recording like the Insights API until interrupted."""
    from grid_guardian_assets.replay.server import ReplayServer

    server = ReplayServer(host, port)
    typer.echo(f"Insights API replay at {server.base_url} (FUELHH real 2018; FREQ/INDO/ITSDO/B1610/PN synthetic)", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@app.command("demo")
def demo(
    start: Annotated[str, typer.Option(help="First settlement day of the week (bundled real 2018 data).")] = "2018-03-25",
    days: Annotated[int, typer.Option(help="How many settlement days get every dataset.")] = 7,
    epochs: Annotated[int, typer.Option(help="Training epochs of the verifier.")] = 3,
    verifier: Annotated[bool, typer.Option(help="Also build the benchmark and train the verifier.")] = True,
    root: Annotated[Path, typer.Option(help="Folder for the demo's data and Dagster instance.")] = Path(".grid_guardian"),
    replay_url: Annotated[Optional[str], typer.Option(help="Use a running Insights API (replay) server instead of starting one.")] = None,
) -> None:
    """Run the pipeline end to end on bundled real data: BMRS chains, grid snapshots, benchmark, verifier."""
    from grid_guardian_assets.demo import DemoPaths, DemoPlan, repo_dagster_yaml, run_demo

    try:
        first = parse_day(start)
    except ValueError as exc:
        _fail(str(exc))
    if days < 1 or epochs < 1:
        _fail(f"--days and --epochs must be at least 1, got {days} and {epochs}")
    plan = DemoPlan.default(first, days)
    plan.epochs, plan.verifier = epochs, verifier
    ok = run_demo(plan, DemoPaths.under(root), replay_url=replay_url, repo_dagster_yaml=repo_dagster_yaml())
    raise typer.Exit(code=0 if ok else 1)


if __name__ == "__main__":
    app()
