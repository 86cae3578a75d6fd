"""Typed polars frames from raw responses, and the pandera (polars backend) checks every partition must pass."""

from grid_guardian_assets.validation.parse import ParsedFrame, frame_from_raw, frame_from_records
from grid_guardian_assets.validation.validate import ValidationReport, validate_partition, validate_partitions

__all__ = ["ParsedFrame", "ValidationReport", "frame_from_raw", "frame_from_records", "validate_partition", "validate_partitions"]
