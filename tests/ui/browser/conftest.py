"""The browser tests' stack, each piece a real process on 127.0.0.1 at a free port: the API server
(tiny_api_server.py, over a real pipeline), the Streamlit app (`streamlit run ui/app.py`), and headless Chromium
(Debian's /usr/bin/chromium, `make browser`) driven by Playwright. One of each per test run; every test gets a fresh
browser context, which is a new browser session to the app and so a new owner to the server."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator

import pytest

pytest.importorskip("playwright", reason="the dev extra installs playwright (make install)")

from browser_stack import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, HERE, VIEWPORT, child_env, free_port, running


@pytest.fixture(scope="session", autouse=True)
def _fresh_artifacts() -> None:
    """This run's screenshots only: last run's are removed (logs are rewritten as the processes start)."""
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()


@pytest.fixture(scope="session")
def api_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("browser-api")
    port = free_port()
    argv = [sys.executable, str(HERE / "tiny_api_server.py"), "--port", str(port), "--workdir", str(workdir)]
    url = f"http://127.0.0.1:{port}"
    with running("api-server", argv, f"{url}/readyz", child_env(DOSSIER_HOME=str(workdir / "home"))):
        yield url


@pytest.fixture(scope="session")
def app_url(api_url: str) -> Iterator[str]:
    port = free_port()
    argv = [sys.executable, "-m", "streamlit", "run", "ui/app.py", "--server.address", "127.0.0.1",
            "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none", "--server.maxUploadSize", "100"]  # MB: over the API's own limit
    url = f"http://127.0.0.1:{port}"
    with running("streamlit", argv, f"{url}/_stcore/health", child_env(DOSSIER_API_URL=api_url)):
        yield url


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not shutil.which(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}: `make browser` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser, app_url: str, request: pytest.FixtureRequest) -> Iterator[object]:
    """`new_page()`: the app open in a new browser context (a new owner); closed after the test, with a screenshot
    of each page saved when the test failed."""
    from app_steps import open_app

    contexts = []

    def make() -> object:
        context = browser.new_context(viewport=VIEWPORT, accept_downloads=True, locale="zh-CN")
        contexts.append(context)
        page = context.new_page()
        open_app(page, app_url)
        return page

    yield make
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for i, context in enumerate(contexts):
        if failed:
            for page in context.pages:
                page.screenshot(path=str(ARTIFACTS / f"FAILED-{request.node.name}-{i}.png"), full_page=True)
        context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    report = yield
    setattr(item, f"rep_{report.when}", report)  # so the fixture above knows whether the test failed
    return report
