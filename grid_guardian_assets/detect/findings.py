"""What every detector reports: a ``Finding`` (a score for a node at a time, 1.0 its alarm threshold) and where its
data came from (``Origin``: a Kafka message, or the stores).

The live job (``stream``), the benchmark's rules (``verifier.rule_detectors``) and the audit of stored days all speak
these; they live here, below all of them, so that ``stream`` imports ``detect`` and never the reverse.
"""

import datetime as dt
import math
from typing import NamedTuple

SYSTEM_NODE = "system"  # system frequency
NATIONAL_NODE = "national"  # the national balance of a settlement period


class Origin(NamedTuple):
    """Where a message came from: enough for an analyst to find it again.

    Origins, raw messages and readings are named tuples: a catch-up makes one of each per message, and a frozen
    dataclass costs several times as much to build."""

    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}/{self.partition}@{self.offset}"


# Findings computed from stored days rather than from a Kafka message carry this origin.
STORED = Origin("stored", -1, -1)


class Finding(NamedTuple):
    """One score for one node at one time, and where it came from. ``score >= 1`` is an alert.

    A named tuple rather than a frozen dataclass: a catch-up batch makes about seventy per settlement period (a score
    per bus and per detector), and a frozen dataclass cost four times as much to build. Immutable all the same; a
    copy with a field changed is ``finding._replace(...)``.
    """

    node: str
    time: dt.datetime
    score: float
    source: str  # a rule name, or "model"
    dataset: str
    origin: Origin
    detail: dict[str, float | str] = {}  # read-only (never written to): one period's findings may share it
    model_version: str = "none"  # the checkpoint scoring when the finding was made ("none": physics rules only)

    @property
    def alert(self) -> bool:
        return math.isfinite(self.score) and self.score >= 1.0  # math, not numpy: asked of every finding
