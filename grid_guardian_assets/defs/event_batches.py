"""A step's per-day asset events logged as one batch: one event-log write for a day's or a month's events.

A ranged run of the settlement days records each day itself (see ``defs/daily/assets.py``): about 30 events per day,
which Dagster logs one at a time when the step yields them, each one a write (a transaction, a commit and a WAL
checkpoint per database on the local SQLite instance). Dagster batches the events it makes itself for a ranged
output (``DagsterEventBatchMetadata``; with ``DAGSTER_EVENT_BATCH_SIZE`` set the instance hands them to the storage's
``store_event_batch`` together); ``batched_events`` gives the step's own events the same metadata. The events are
Dagster's own (the same types, messages and metadata as yielding the objects would give), and the step yields them
as it would have yielded the objects.

A failing blocking check is left as the plain object: the step's executor must see it to stop downstream steps.

This goes through Dagster internals (``StepExecutionContext``, ``DagsterEvent.from_step``, the batch metadata),
pinned with ``dagster==1.13.27``; ``grid_guardian_tests/test_event_batches.py`` checks that the events land as if
yielded, and the instance storage's tests that a batch is one transaction.
"""

from collections.abc import Sequence

import dagster as dg
from dagster._core.events import DagsterEvent, DagsterEventBatchMetadata, DagsterEventType, generate_event_batch_id


def _blocks(event: object) -> bool:
    return (
        isinstance(event, dg.AssetCheckEvaluation)
        and event.blocking
        and not event.passed
        and event.severity == dg.AssetCheckSeverity.ERROR
    )


def batched_events(context: dg.AssetExecutionContext, events: Sequence[object]) -> list[object]:
    """Log ``events`` (``AssetMaterialization``s and ``AssetCheckEvaluation``s of the running step) as one batch and
    return what the step yields in their place: the logged ``DagsterEvent``s, in order, and any failing blocking check
    as it was."""
    step_context = context.op_execution_context._step_execution_context  # noqa: SLF001 (see the module docstring)
    to_log = [e for e in events if isinstance(e, (dg.AssetMaterialization, dg.AssetCheckEvaluation)) and not _blocks(e)]
    batch_id, last = generate_event_batch_id(), len(to_log) - 1
    logged: dict[int, DagsterEvent] = {}
    for i, event in enumerate(to_log):
        batch = DagsterEventBatchMetadata(batch_id, i == last)
        if isinstance(event, dg.AssetMaterialization):
            logged[id(event)] = DagsterEvent.asset_materialization(step_context, event, batch)
        else:  # DagsterEvent.asset_check_evaluation's own message: that helper takes no batch metadata
            message = f"Asset check '{event.check_name}' on '{event.asset_key.to_user_string()}' " + (
                "passed." if event.passed else "did not pass."
            )
            logged[id(event)] = DagsterEvent.from_step(
                event_type=DagsterEventType.ASSET_CHECK_EVALUATION,
                step_context=step_context,
                event_specific_data=event,
                message=message + ("" if event.description is None else f" Description: '{event.description}'"),
                batch_metadata=batch,
            )
    return [logged.get(id(e), e) for e in events]
