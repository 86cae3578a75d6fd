"""Backfill benchmark: a year of settlement days through Dagster against one single-day run, in one process tree.

Starts the replay server (``grid-guardian replay serve``) and a fresh Dagster instance (the project's
``dagster.yaml``), then runs, with the Dagster CLI exactly as a data engineer would:

1. the baseline: ``dagster asset materialize --select '*grid_snapshots' --partition DAY`` (one settlement day);
2. the range: the same selection with ``--partition-range START...END`` (a year by default), into a fresh data
   folder so that it does the same work for every day.

Prints both wall times, seconds per day, their ratio (the year in single-day runs), the peak memory of each run
and the run's failure if any; then ``import grid_guardian_assets.definitions`` against ``import dagster`` alone.
Targets (issue #11, 2 CPU cores): the year in at most 5 minutes, at most 5 single-day runs, flat memory, and the
code location's import at most 2.5 s in all.

``--storage sqlite-dagster`` runs both on Dagster's own SQLite event log (the project's ``dagster.yaml`` without
its ``event_log_storage`` block: a new engine and connection per event) instead of the project's pooled one.
``--storage postgres`` runs both on the production instance settings (``deploy/dagster.production.yaml``: run and
event storage in PostgreSQL, a fresh database per run on ``$DAGSTER_POSTGRES_HOST``, default 127.0.0.1, user
postgres) instead of the local SQLite default: Dagster writes about 25 events per settlement day, and SQLite's
per-event cost (a new connection, a commit and a WAL checkpoint per event) is most of a year's time.

Run: .venv/bin/python bench/bench_backfill.py [--start 2018-01-01 --end 2018-12-31 --day 2018-03-02] [--storage sqlite-dagster|postgres]
"""

import argparse
import datetime as dt
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall seconds and peak RSS (MB, GNU time) of one command."""
    started = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "PEAK_RSS_KB=%M", *cmd], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    peak = re.findall(r"PEAK_RSS_KB=(\d+)", proc.stderr)
    return seconds, (int(peak[-1]) / 1024 if peak else float("nan")), proc


def import_seconds(statement: str, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-W", "ignore", "-c", statement], check=True, cwd=REPO)
        best = min(best, time.perf_counter() - started)
    return best


def fresh_postgres_database(name: str) -> dict[str, str]:
    """Create (or recreate) an empty database for one run; the DAGSTER_POSTGRES_* settings that point at it."""
    import psycopg2

    settings = {
        "DAGSTER_POSTGRES_HOST": os.environ.get("DAGSTER_POSTGRES_HOST", "127.0.0.1"),
        "DAGSTER_POSTGRES_USER": os.environ.get("DAGSTER_POSTGRES_USER", "postgres"),
        "DAGSTER_POSTGRES_PASSWORD": os.environ.get("DAGSTER_POSTGRES_PASSWORD", ""),
        "DAGSTER_POSTGRES_DB": name,
    }
    admin = psycopg2.connect(host=settings["DAGSTER_POSTGRES_HOST"], user=settings["DAGSTER_POSTGRES_USER"],
                             password=settings["DAGSTER_POSTGRES_PASSWORD"] or None, dbname="postgres")
    admin.autocommit = True
    admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.cursor().execute(f"CREATE DATABASE {name}")
    admin.close()
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default="2018-01-01")
    parser.add_argument("--end", default="2018-12-31")
    parser.add_argument("--day", default="2018-03-02", help="the single-day baseline's settlement day")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders")
    parser.add_argument("--storage", choices=("sqlite", "sqlite-dagster", "postgres"), default="sqlite",
                        help="Dagster instance storage: the local default (SQLite, the project's pooled event log), "
                             "Dagster's own SQLite event log (the baseline the pooled one replaced), or production's "
                             "(PostgreSQL)")
    args = parser.parse_args()
    days = (dt.date.fromisoformat(args.end) - dt.date.fromisoformat(args.start)).days + 1

    work = Path(tempfile.mkdtemp(prefix="bench_backfill_"))
    port = free_port()
    server = subprocess.Popen(
        [str(BIN / "grid-guardian"), "replay", "serve", "--port", str(port)], stderr=subprocess.DEVNULL, cwd=REPO
    )
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        results = {}
        for label, partition in (("single day", ["--partition", args.day]), ("range", ["--partition-range", f"{args.start}...{args.end}"])):
            home, data = work / label.replace(" ", "_") / "dagster_home", work / label.replace(" ", "_") / "data"
            home.mkdir(parents=True)
            env = {
                **os.environ,
                "DAGSTER_HOME": str(home),
                "GRID_GUARDIAN_DATA_DIR": str(data),
                "ELEXON_API_BASE_URL": f"http://127.0.0.1:{port}/bmrs/api/v1",
                "PYTHONWARNINGS": "ignore",
            }
            if args.storage == "postgres":
                shutil.copy(REPO / "deploy" / "dagster.production.yaml", home / "dagster.yaml")
                env.update(fresh_postgres_database(f"bench_backfill_{label.replace(' ', '_')}"))
            elif args.storage == "sqlite-dagster":
                settings = yaml.safe_load((REPO / "dagster.yaml").read_text())
                settings.pop("event_log_storage")
                (home / "dagster.yaml").write_text(yaml.safe_dump(settings))
            else:
                shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
            cmd = [str(BIN / "dagster"), "asset", "materialize", "-m", "grid_guardian_assets.definitions",
                   "--select", "*grid_snapshots", *partition]
            seconds, peak_mb, proc = timed(cmd, env)
            results[label] = (seconds, peak_mb)
            status = "ok" if proc.returncode == 0 else f"FAILED (exit {proc.returncode})"
            print(f"{label:>10} ({args.storage}): {seconds:7.1f} s, peak RSS {peak_mb:6.0f} MB, {status}")
            if proc.returncode != 0:
                failure = [line for line in proc.stderr.splitlines() if "settlement days failed" in line or "Error" in line]
                print("            " + "\n            ".join(failure[-5:]))
        single, year = results["single day"][0], results["range"][0]
        print(f"\nrange of {days} days: {year / days:.2f} s per day; single-day run: {single:.1f} s")
        print(f"range / single-day run: {year / single:.1f}x (target <= 5); range {year / 60:.1f} min (target <= 5)")
        print(f"peak memory: range {results['range'][1]:.0f} MB vs single day {results['single day'][1]:.0f} MB "
              f"({results['range'][1] / results['single day'][1]:.2f}x)")
    finally:
        server.terminate()
        server.wait(timeout=10)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")

    dagster_s = import_seconds("import dagster")
    defs_s = import_seconds("import grid_guardian_assets.definitions")
    print(f"\nimport dagster: {dagster_s:.2f} s; import grid_guardian_assets.definitions: {defs_s:.2f} s in all "
          f"(+{defs_s - dagster_s:.2f} s; target <= 2.5 s in all)")


if __name__ == "__main__":
    main()
