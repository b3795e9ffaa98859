"""End to end in headless Chromium: upload compounds, choose a cohort, run a small trial on the
local Dask cluster, read the scorecard and a band plot; a run id leaving the runs folder is
refused. Screenshots of every page go to ``$INSILICO_E2E_ARTIFACTS`` (default
``tests/e2e/artifacts/``).

Needs Debian's ``chromium`` (``/usr/bin/chromium``, or ``$CHROMIUM``) and the ``playwright``
Python package (no ``playwright install``: the system browser is used).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "app" / "streamlit_app.py"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("INSILICO_E2E_ARTIFACTS", REPO / "tests" / "e2e" / "artifacts"))
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
COMPOUNDS_CSV = (
    "id,name,smiles,cl_mL_min_kg,vdss_L_per_kg,fu,f_bio,fe,ka_per_h,potency_nM,herg_ic50_uM\n"
    "atenolol,Atenolol,CC(C)NCC(O)COc1ccc(CC(N)=O)cc1,2.5,0.95,0.94,0.58,0.94,0.8,700,\n"
    "broken,Broken,C1CC(,1,1,0.5,0.5,0.1,1,10,\n"
    "propranolol,Propranolol,CC(C)NCC(O)COc1cccc2ccccc12,12,3.1,0.13,0.26,0.01,1.0,8,2.0\n"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    required = os.environ.get("INSILICO_REQUIRE_BROWSER") == "1"  # set by .ci/run
    missing = None
    if not Path(CHROMIUM).exists():
        missing = f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "the playwright package is not installed (pip install -e '.[test]')"
    if missing:
        (pytest.fail if required else pytest.skip)(missing)
    runs = tmp_path_factory.mktemp("e2e_runs")
    port = _free_port()
    env = {**os.environ, "INSILICO_RUNS": str(runs)}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    log = (tmp_path_factory.mktemp("e2e_log") / "streamlit.log").open("w")
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", "127.0.0.1", "--server.port", str(port),
        "--server.headless", "true", "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.25)
        else:
            raise RuntimeError("streamlit did not start")
        yield url, runs
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


def _shot(page, name: str, height: int = 2600) -> None:
    """Screenshot of the whole page: Streamlit scrolls inside its own container, so the
    viewport is made tall for the shot (then restored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": height})
    page.wait_for_timeout(1200)  # re-layout and chart transitions
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    page.set_viewport_size(size)


def _wait_idle(page, timeout_ms: int = 60_000) -> None:
    """Wait until Streamlit has finished the current script run."""
    page.wait_for_selector(
        "[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout_ms
    )
    page.wait_for_timeout(300)


def _nav(page, title: str) -> None:
    """Go to a page through the sidebar (a new URL would start a new session)."""
    page.locator("[data-testid='stSidebarNav'] a", has_text=title).first.click()
    page.wait_for_selector(f"h1:has-text('{title}')", timeout=60_000)
    _wait_idle(page)


def _goto(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("[data-testid='stApp']", timeout=30_000)
    page.wait_for_selector("h1", timeout=60_000)
    _wait_idle(page)


def test_design_run_and_read_a_trial(server, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        _scenario(page, *server, tmp_path)
    except Exception:
        _shot(page, "FAILED")  # what the page showed when the test failed
        raise
    finally:
        page.close()


def _scenario(page, url, runs, tmp_path):
    # 1. compounds: upload a CSV with one broken row
    _goto(page, url)
    csv = tmp_path / "compounds.csv"
    csv.write_text(COMPOUNDS_CSV, encoding="utf-8")
    page.locator("input[type='file']").first.set_input_files(str(csv))
    page.get_by_text("2 usable compound(s)").wait_for(timeout=60_000)
    _wait_idle(page)
    assert page.get_by_text("These rows cannot be used").is_visible()
    page.get_by_role("button", name="Use these compounds in the trial design").click()
    page.get_by_text("The design now has 2 compound(s)").wait_for(timeout=30_000)
    _shot(page, "1_compounds")

    # 2. cohort: preset, n, then use it
    _nav(page, "Cohort")
    n_input = page.get_by_label("Patients in the trial (n)")
    n_input.fill("200")
    n_input.press("Enter")
    _wait_idle(page)
    page.get_by_role("button", name="Use this cohort and n in the trial design").click()
    page.get_by_text("n = 200").wait_for(timeout=30_000)
    page.locator(".vega-embed").first.wait_for(timeout=30_000)
    _wait_idle(page)
    _shot(page, "2_cohort")

    # 3. design: valid, 5 arms (2 + 2 quickstart arms and placebo)
    _nav(page, "Trial design")
    page.get_by_text("Valid protocol").wait_for(timeout=30_000)
    assert page.get_by_text("5 arm(s) × 200 patients").is_visible()
    _shot(page, "3_design")

    # 4. run on the local Dask cluster; the page is reloaded mid-run (a new session of the
    # same server): the Run page reattaches to the running job
    _nav(page, "Run")
    page.get_by_role("button", name="Start the run").click()
    page.wait_for_timeout(1000)
    page.reload()
    page.get_by_text("Reattached to the run").wait_for(timeout=60_000)
    page.get_by_text("is ready").wait_for(timeout=300_000)  # ~30 s warm; cold numba: more
    _shot(page, "4_run")
    page.get_by_role("button", name="Open the results").click()
    page.wait_for_selector("h1:has-text('Results')", timeout=60_000)

    # 5. results: scorecard, bands, exposure, one patient
    page.get_by_text("Scorecard per compound × arm").wait_for(timeout=60_000)
    _wait_idle(page)
    page.get_by_text("Ranking on").wait_for(timeout=60_000)
    page.locator("[data-testid='stVegaLiteChart']").first.wait_for(timeout=60_000)
    assert "run=" in page.url
    _shot(page, "5_results_scorecard")
    for tab, name in (
        ("Time courses", "6_results_bands"),
        ("Exposure", "7_results_exposure"),
        ("One patient", "8_results_patient"),
        ("Dose scan", "9_results_dose"),
    ):
        page.get_by_role("tab", name=tab).click()
        page.wait_for_timeout(1500)
        _shot(page, name)
    page.get_by_role("tab", name="Time courses").click()
    page.get_by_text("Plasma concentration (mg/L)").first.wait_for(timeout=30_000)

    # the run landed where the CLI puts runs
    done = [p for p in runs.iterdir() if (p / "manifest.json").is_file()]
    assert len(done) == 1 and (done[0] / "summary.parquet").is_file()

    # 6. narrow window
    page.set_viewport_size({"width": 420, "height": 900})
    page.get_by_role("tab", name="Scorecard").click()
    page.wait_for_timeout(1500)
    _shot(page, "10_results_narrow")

    # 7. a run id that leaves the runs folder is refused
    page.set_viewport_size({"width": 1400, "height": 1000})
    _goto(page, f"{url}/results?run=../../etc")
    page.get_by_text("Refused the run in the address").wait_for(timeout=30_000)
    _shot(page, "11_results_refused")


def test_artifacts_folder_is_writable():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    probe = ARTIFACTS / ".probe"
    probe.write_text("ok")
    probe.unlink()
    assert shutil.disk_usage(ARTIFACTS).free > 0
