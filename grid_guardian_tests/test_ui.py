"""The Dagster UI, seen: a real webserver on a free port, driven by headless Chromium through Playwright."""

import datetime as dt
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from grid_guardian_assets.defs.instance_storage import settings_for_home
from grid_guardian_assets.dev.local_servers import free_port
from grid_guardian_tests.conftest import REPO, materialize_chain

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.integration,  # dagster-webserver and Chromium
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)"),
]
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]


@pytest.fixture
def webserver(tmp_path: Path, replay, data_dir: Path):
    """An instance with one materialised FUELHH day, served by dagster-webserver on a free loopback port."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(settings_for_home((REPO / "dagster.yaml").read_text(), home))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert materialize_chain("fuelhh", dt.date(2018, 3, 1), base_url=replay.base_url, data_dir=data_dir, instance=instance).success
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "GRID_GUARDIAN_DATA_DIR": str(data_dir), "ELEXON_API_BASE_URL": replay.base_url}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-w", str(REPO / "workspace.yaml")],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    import httpx

    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/server_info", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(1)
        if proc.poll() is not None:
            pytest.fail(f"dagster-webserver exited: {proc.stderr.read()[-2000:]}")
    else:
        proc.kill()
        pytest.fail("dagster-webserver did not answer within 120 s")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def _dismiss_dialogs(page) -> None:
    for name in ("Skip", "Dismiss", "Close"):
        button = page.get_by_role("button", name=name)
        if button.count():
            button.first.click()


def test_asset_graph_the_live_paths_and_the_learned_halfs_lineage_and_a_partitioned_assets_checks_are_visible(webserver: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as p:
        # Playwright gives each launch a fresh, empty profile directory.
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(f"{webserver}/locations/grid_guardian/asset-groups/bmrs_fuelhh", wait_until="networkidle")
        _dismiss_dialogs(page)
        for name in ("fuelhh_raw", "fuelhh_frames", "fuelhh_store"):
            page.get_by_text(name, exact=True).first.wait_for(timeout=30_000)
        page.screenshot(path=str(shots / "asset_graph.png"))

        page.goto(f"{webserver}/assets/fuelhh_frames?view=checks", wait_until="networkidle")
        _dismiss_dialogs(page)
        page.get_by_text("valid", exact=True).first.wait_for(timeout=30_000)
        page.get_by_text("Passed").first.wait_for(timeout=30_000)
        page.screenshot(path=str(shots / "fuelhh_frames_checks.png"))

        page.goto(f"{webserver}/assets/fuelhh_store?view=events", wait_until="networkidle")
        _dismiss_dialogs(page)
        page.get_by_text("2018-03-01").first.wait_for(timeout=30_000)  # the materialised partition
        page.get_by_text("file_bytes").first.wait_for(timeout=30_000)  # and its metadata
        page.screenshot(path=str(shots / "fuelhh_store_events.png"))

        # The live path in the lineage: verifier and self-play (the checkpoint) and the topics upstream of the
        # inference, its Redis alerts and the dead-letter topic downstream.
        page.goto(f"{webserver}/assets/live_anomaly_scores?view=lineage", wait_until="networkidle")
        _dismiss_dialogs(page)
        for name in ("live_anomaly_scores", "gnn_verifier", "self_play_round", "bmrs.FUELHH", "bmrs.FREQ", "redis_alerts", "bmrs.dlq"):
            page.get_by_text(name, exact=True).first.wait_for(timeout=30_000)
        page.screenshot(path=str(shots / "live_lineage.png"))

        # The learned half reads the stores: their edges into the calibration, the benchmark and the verifier (the graph
        # shortens detector_calibration's label, so its own page names it).
        learned = {"detector_calibration": ("fuelhh_store", "indo_store", "itsdo_store", "neso_demand_store", "agws_store"),
                   "anomaly_benchmark": ("fuelhh_store", "itsdo_store", "agws_store", "grid_snapshots"),
                   "gnn_verifier": ("fuelhh_store", "itsdo_store", "anomaly_benchmark", "grid_snapshots")}
        for asset, upstream in learned.items():
            page.goto(f"{webserver}/assets/{asset}?view=lineage&lineageScope=upstream&lineageDepth=1", wait_until="networkidle")
            _dismiss_dialogs(page)
            for name in (asset, *upstream):
                page.get_by_text(name, exact=True).first.wait_for(timeout=30_000)
            page.screenshot(path=str(shots / f"{asset}_lineage.png"))
        # Their weekly refresh, off by default, in the Automation tab.
        page.goto(f"{webserver}/automation", wait_until="networkidle")
        _dismiss_dialogs(page)
        page.get_by_text("learned_refresh_sensor", exact=True).first.wait_for(timeout=30_000)
        page.screenshot(path=str(shots / "automation.png"))
        browser.close()
    for name in ("asset_graph.png", "fuelhh_frames_checks.png", "fuelhh_store_events.png", "live_lineage.png",
                 "detector_calibration_lineage.png", "anomaly_benchmark_lineage.png", "gnn_verifier_lineage.png", "automation.png"):
        assert (shots / name).stat().st_size > 10_000
    keep = os.environ.get("GRID_GUARDIAN_SCREENSHOTS")
    if keep:
        shutil.copytree(shots, keep, dirs_exist_ok=True)
