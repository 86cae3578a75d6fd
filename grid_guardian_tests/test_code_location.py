"""The code location stays light: every Dagster run and step process imports it."""

import json
import subprocess
import sys

import pytest

from grid_guardian_tests.conftest import REPO

# Loaded by the asset bodies and resource methods that use them, never by importing the definitions.
HEAVY = (
    "torch", "torch_geometric", "torch_geometric_temporal", "mlflow", "dagster_mlflow", "matplotlib", "pandera", "h5py", "scipy",
    # lighter, but every step process paid for them before a step needed them (numpy ~0.1-0.3 s, the HTTP stack ~0.3 s)
    "numpy", "httpx", "pyrate_limiter", "tenacity",
)


@pytest.mark.parametrize("module", ["grid_guardian_assets.definitions"])
def test_importing_the_code_location_loads_no_heavy_library(module: str) -> None:
    probe = f"import sys, json, {module}; print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_every_daily_asset_runs_ranges_in_one_run() -> None:
    """The CLI's --partition-range and the UI's backfills take a range whole only with a single-run policy."""
    import dagster as dg

    from grid_guardian_assets.definitions import defs

    graph = defs.get_repository_def().asset_graph
    daily = [key for key in graph.get_all_asset_keys() if graph.get(key).partitions_def is not None
             and isinstance(graph.get(key).partitions_def, dg.DailyPartitionsDefinition)]
    assert daily
    for key in daily:
        assert graph.get(key).backfill_policy == dg.BackfillPolicy.single_run(), key.to_user_string()
