"""Fixtures of the browser tests: a tiny dataset and model (once per session), the service
serving them on a free loopback port in a subprocess, Debian's Chromium driven by
Playwright, and a page per test that saves a screenshot and fails on any console error."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
API_KEY = "browser-test-key"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOT_DIR = Path(
    os.environ.get("SOCIALCART_SCREENSHOT_DIR", REPO / "artifacts" / "browser-screenshots")
)
"""Where every test leaves its PNG (``artifacts/`` is git-ignored; CI keeps it)."""
STARTUP_SECONDS = 90
DOCS_SCREENSHOT = REPO / "docs" / "screenshot.png"
"""The README's picture; written by the suite when SOCIALCART_DOCS_SCREENSHOT=1."""


def chromium_path() -> str | None:
    candidates = [os.environ.get("SOCIALCART_CHROMIUM"), "/usr/bin/chromium"]
    candidates += [shutil.which("chromium"), shutil.which("chromium-browser")]
    return next((c for c in candidates if c and Path(c).is_file()), None)


def _missing(reason: str) -> None:
    """Skip on a developer machine without a browser; fail in CI, which installs one."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@dataclass(frozen=True)
class Server:
    base_url: str
    api_key: str

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(self.base_url + path, timeout=10) as response:
            return json.load(response)


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The service on 127.0.0.1 with a tiny dataset and a quickly trained model."""
    from synthetic_data import generate, make_config
    from tests.service.conftest import fast_hybrid

    root = tmp_path_factory.mktemp("browser")
    dataset_dir = root / "data" / "tiny"
    dataset = generate(make_config("tiny", seed=0))
    dataset.save(dataset_dir)
    model_dir = root / "models" / "tiny"
    fast_hybrid().fit(dataset).save(model_dir)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "SOCIALCART_MODEL_DIR": str(model_dir),
        "SOCIALCART_DATASET_DIR": str(dataset_dir),
        "SOCIALCART_DATABASE_URL": f"sqlite:///{root / 'store.db'}",
        "SOCIALCART_API_KEY": API_KEY,
        "SOCIALCART_DEMO_LOOPBACK_WRITES": "false",
        "SOCIALCART_SYNC_INTERVAL_SECONDS": "0",
        "SOCIALCART_WRITE_RATE_LIMIT": "1000/second",
    }
    log = (root / "server.log").open("wb")
    command = [
        sys.executable, "-m", "uvicorn", "service.app:app_from_env", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip
    # cwd: an empty folder, so no .env file of the checkout is read.
    process = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base_url, process, root / "server.log")
        yield Server(base_url=base_url, api_key=API_KEY)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_ready(base_url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the service exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(base_url + "/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    pytest.fail(f"the service was not ready within {STARTUP_SECONDS} s:\n{log.read_text()}")


@pytest.fixture(scope="package")
def browser():
    """Debian's Chromium, headless (Playwright's own browser download is not used)."""
    executable = chromium_path()
    if executable is None:
        _missing("Chromium not found: apt-get install chromium (or set SOCIALCART_CHROMIUM)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed: pip install -e '.[dev]'")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@dataclass
class ConsoleWatch:
    """Console errors and uncaught exceptions of a page; tests that provoke an error
    response allow its message by pattern."""

    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    allowed: list[re.Pattern] = field(default_factory=list)

    def allow(self, pattern: str) -> None:
        self.allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]


@dataclass
class PageOptions:
    viewport: dict = field(default_factory=lambda: {"width": 1280, "height": 900})
    mobile: bool = False
    with_key: bool = True


@pytest.fixture
def page_options() -> PageOptions:
    return PageOptions()


@pytest.fixture
def console() -> ConsoleWatch:
    return ConsoleWatch()


@pytest.fixture
def page(browser, server: Server, page_options: PageOptions, console: ConsoleWatch, request):
    """A fresh browser context on the service; the key is in local storage unless the test
    says otherwise. Saves ``<test name>.png`` and fails on console errors."""
    context = browser.new_context(
        viewport=page_options.viewport,
        is_mobile=page_options.mobile,
        has_touch=page_options.mobile,
        base_url=server.base_url,
    )
    if page_options.with_key:
        context.add_init_script(
            f"window.localStorage.setItem('socialcart.apiKey', {json.dumps(server.api_key)});"
        )
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.on("console", lambda m: m.type == "error" and console.errors.append(m.text))
    page.on("pageerror", lambda exc: console.errors.append(f"uncaught: {exc}"))

    def on_dialog(dialog) -> None:
        console.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    try:
        yield page
    finally:
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.name)
        try:
            page.screenshot(path=str(SCREENSHOT_DIR / f"{name}.png"), full_page=True)
        finally:
            context.close()
    assert not console.dialogs, f"the page opened dialogs: {console.dialogs}"
    assert not console.unexpected(), f"browser console errors: {console.unexpected()}"


def save_docs_screenshot(page) -> None:
    """Refresh the README's screenshot (viewport only, 256 colours to keep it small)."""
    if os.environ.get("SOCIALCART_DOCS_SCREENSHOT") != "1":
        return
    from PIL import Image

    page.screenshot(path=str(DOCS_SCREENSHOT))
    with Image.open(DOCS_SCREENSHOT) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(DOCS_SCREENSHOT, optimize=True)
