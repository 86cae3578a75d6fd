"""Kept for callers not yet moved to ``data_layout`` (``defs/live/jobs.py``); new code uses ``DataLayout``."""

from pathlib import Path

from grid_guardian_assets.data_layout import DataLayout
from grid_guardian_assets.settings import DATA_DIR

DATA_DIR_ENV = DATA_DIR.name


def default_data_dir() -> Path:
    """The environment's data root (``DataLayout.at().root``)."""
    return DataLayout.at().root
