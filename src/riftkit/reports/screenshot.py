"""Render an HTML report in headless Chromium: a PNG screenshot, and the driver the browser tests share.

Uses Selenium 4 with Debian's Chromium (``/usr/bin/chromium``) and its
matching driver (``/usr/bin/chromedriver``); ``scripts/install.sh`` installs
both where apt is available. The driver path is given explicitly, so Selenium
Manager never runs and nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def missing_binaries() -> list[str]:
    """The paths of Chromium and its driver that are not on this machine (empty when both are)."""
    return [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).is_file()]


def chromium_driver(width: int = 1280, height: int = 1600):
    """Start headless Chromium whose page viewport is ``width`` x ``height``; the caller must ``quit()`` it.

    Args:
        width: viewport width in CSS pixels (screenshots have this many pixels across).
        height: viewport height in CSS pixels.

    Returns:
        A ``selenium.webdriver.Chrome`` driver.

    Raises:
        RuntimeError: Chromium or chromedriver is missing (the message names the path),
            or selenium is not installed.
        selenium.common.exceptions.WebDriverException: the browser failed to start.
    """
    missing = missing_binaries()
    if missing:
        raise RuntimeError(f"headless Chromium unavailable: {' and '.join(missing)} not found (scripts/install.sh installs chromium and chromium-driver where apt is available)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as error:  # selenium is an optional dependency of the reports
        raise RuntimeError("selenium is not installed (pip install selenium)") from error

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
                     f"--window-size={width},{height}", "--hide-scrollbars"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        # The window includes browser chrome even when headless: pin the viewport itself instead.
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    except Exception:
        driver.quit()
        raise
    return driver


def screenshot(html_path: str | Path, png_path: str | Path, width: int = 1280, height: int = 1600) -> Path:
    """Open ``html_path`` in headless Chromium and save what a ``width`` x ``height`` viewport shows as a PNG.

    Args:
        html_path: the HTML file (e.g. from :func:`riftkit.reports.html.write_report`).
        png_path: where to write the PNG; parent folders are created.
        width: viewport (and PNG) width in pixels.
        height: viewport (and PNG) height in pixels: the top of the page; it is not scrolled.

    Returns:
        ``png_path`` as a :class:`~pathlib.Path`.

    Raises:
        FileNotFoundError: ``html_path`` does not exist.
        RuntimeError: Chromium or chromedriver is missing (named in the message), or the
            screenshot could not be saved.
    """
    html_path = Path(html_path).resolve()
    if not html_path.is_file():
        raise FileNotFoundError(f"no HTML file at {html_path}")
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    driver = chromium_driver(width, height)
    try:
        driver.get(html_path.as_uri())  # returns after the load event: embedded images are decoded
        if not driver.save_screenshot(str(png_path)):
            raise RuntimeError(f"Chromium could not save a screenshot to {png_path}")
    finally:
        driver.quit()
    return png_path
