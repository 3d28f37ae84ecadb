"""Headless Debian Chromium for the browser tests (the report's pages and the job form)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

__all__ = ["CHROMIUM", "CHROMEDRIVER", "have_browser", "start_chrome"]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def have_browser() -> bool:
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


def start_chrome(profile: Path, *, window: str, browser_logs: bool = False, page_timeout: float = 60) -> Any:
    """A headless Chromium with a fresh profile and no background networking (the machine has none)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--window-size={window}",
        f"--user-data-dir={profile}",
    ):
        opts.add_argument(arg)
    if browser_logs:
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    drv.set_page_load_timeout(page_timeout)
    return drv
