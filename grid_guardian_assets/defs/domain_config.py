"""Dagster run config declared from the domain's plain config dataclasses, so defaults and meanings have one home.

A Dagster config class names each field with its type (the config UI stays typed) and takes the default and
description from the dataclass field of the same name with ``from_domain``; ``to_domain`` builds the dataclass from
the run config and refuses a field that one side has and the other lacks, instead of dropping it.
grid_guardian_tests/test_run_config.py checks that the two sides declare the same fields, types and defaults.
"""

import dataclasses
from typing import Any, TypeVar

import dagster as dg
from pydantic import Field

Domain = TypeVar("Domain")


def from_domain(domain: type, name: str) -> Any:
    """The pydantic field for Dagster config field ``name``: default and description of ``domain``'s field ``name``.

    Args:
        domain: A dataclass whose fields carry their meaning in ``metadata["doc"]``.
        name: The field's name, the same on both sides.
    """
    spec = domain.__dataclass_fields__[name]
    return Field(default=spec.default, description=spec.metadata.get("doc"))


def to_domain(domain: type[Domain], config: dg.Config, *, run_fields: frozenset[str] = frozenset()) -> Domain:
    """``domain`` built from every field of ``config`` but ``run_fields`` (those the asset uses itself).

    Raises:
        TypeError: ``config`` and ``domain`` do not declare the same fields (one was renamed or added on one side).
    """
    values = config.model_dump(exclude=set(run_fields))
    expected = {f.name for f in dataclasses.fields(domain)}
    if values.keys() != expected:
        raise TypeError(f"{type(config).__name__} and {domain.__name__} disagree: only in the Dagster config "
                        f"{sorted(values.keys() - expected)}, only in {domain.__name__} {sorted(expected - values.keys())}")
    return domain(**values)
