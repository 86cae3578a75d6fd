"""Where Grid Guardian keeps its files when nothing says otherwise."""

import os
from pathlib import Path

DATA_DIR_ENV = "GRID_GUARDIAN_DATA_DIR"


def default_data_dir() -> Path:
    """``$GRID_GUARDIAN_DATA_DIR``, else ``~/.grid_guardian``: raw archive, validated frames and HDF5 stores."""
    return Path(os.environ.get(DATA_DIR_ENV) or Path.home() / ".grid_guardian").expanduser()
