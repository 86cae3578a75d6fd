"""Closing the MLflow run that dagster-mlflow opens for an asset, as FINISHED or FAILED."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dagster_mlflow.resources import MlFlow


@contextmanager
def closing_mlflow_run(mlflow: "MlFlow") -> Iterator[str]:
    """Yield the active run's id ("" when there is none) and end the run on the way out.

    dagster-mlflow opens a run when the resource starts and leaves it open; closing it here keeps the next run in
    this process (a sensor-launched retrain, a test) from logging into it. An exception (a ``dg.Failure`` too)
    ends the run as FAILED and propagates.

    Args:
        mlflow: The ``mlflow`` resource of the asset's context.
    """
    active = mlflow.active_run()
    run_id = active.info.run_id if active else ""
    try:
        yield run_id
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise
    mlflow.end_run()
