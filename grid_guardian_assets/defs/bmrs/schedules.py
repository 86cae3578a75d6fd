"""Daily schedules: each dataset is fetched once Elexon has published its settlement day."""

import datetime as dt
from itertools import groupby

import dagster as dg

from grid_guardian_assets.datasets import DATASETS
from grid_guardian_assets.settlement import LONDON


def _jobs_and_schedules() -> tuple[list, list[dg.ScheduleDefinition]]:
    jobs, schedules = [], []
    by_lag = sorted(DATASETS.values(), key=lambda s: s.publication_lag_days)
    for lag, specs in groupby(by_lag, key=lambda s: s.publication_lag_days):
        names = [s.name for s in specs]
        selection = dg.AssetSelection.assets(*[f"{n}_store" for n in names]).upstream()
        if {"fuelhh", "indo", "freq"} <= set(names):
            # Snapshots follow their inputs in the same run (grid_topology, unpartitioned, is materialised once).
            selection = selection | dg.AssetSelection.assets("grid_snapshots")
        # Partitions come from the selected assets; the steps are light, so they run in the run's own process
        # (a process per step would re-import the code location for each).
        job = dg.define_asset_job(
            name=f"bmrs_lag{lag}_job",
            selection=selection,
            executor_def=dg.in_process_executor,
            description=f"Fetch, validate and store {', '.join(n.upper() for n in names)} for one settlement day.",
        )

        def evaluate(context: dg.ScheduleEvaluationContext, lag: int = lag, job_name: str = job.name):
            day = context.scheduled_execution_time.astimezone(LONDON).date() - dt.timedelta(days=lag)
            return dg.RunRequest(run_key=f"{job_name}:{day.isoformat()}", partition_key=day.isoformat())

        schedules.append(
            dg.ScheduleDefinition(
                name=f"bmrs_lag{lag}_daily",
                job=job,
                cron_schedule="30 6 * * *",
                execution_timezone="Europe/London",
                execution_fn=evaluate,
                description=f"Every morning, the settlement day {lag} day(s) back (when Elexon has published it).",
                default_status=dg.DefaultScheduleStatus.STOPPED,
            )
        )
        jobs.append(job)
    return jobs, schedules


bmrs_jobs, bmrs_schedules = _jobs_and_schedules()
