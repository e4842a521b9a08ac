"""The draw-a-digit page in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``) driven by Selenium draws strokes with a mouse and a finger and reads the
prediction and the probability bars. Saves a screenshot; with ``BARENET_UPDATE_DOCS=1`` into
``docs/figures/serve.png`` (the README's picture)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.actions import interaction
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.actions.pointer_input import PointerInput
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from test_serve import serve, stop

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
DOCS_PNG = Path(__file__).resolve().parents[1] / "docs" / "figures" / "serve.png"
# A "7": a top bar, then the diagonal (offsets from the canvas centre, CSS px)
SEVEN = [(-70, -90), (70, -90), (55, -40), (30, 20), (5, 95)]
ONE = [(0, -95), (0, -30), (0, 40), (0, 95)]


@pytest.fixture()
def browser(tmp_path):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    flags = [
        "--headless",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1200,900",
    ]
    if os.geteuid() == 0:
        flags.append("--no-sandbox")  # Chromium refuses to run as root inside its sandbox
    for flag in flags:
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console, read below
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_window_size(1200, 900)
    try:
        yield driver
    finally:
        driver.quit()


def draw_with_mouse(driver, pad, points):
    actions = ActionChains(driver, duration=30)
    actions.move_to_element_with_offset(pad, *points[0]).click_and_hold()
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        for t in (0.25, 0.5, 0.75, 1.0):  # several moves per segment, like a real hand
            actions.move_to_element_with_offset(
                pad, round(x0 + t * (x1 - x0)), round(y0 + t * (y1 - y0))
            )
    actions.release().perform()


def draw_with_finger(driver, pad, points):
    finger = PointerInput(interaction.POINTER_TOUCH, "finger")
    builder = ActionBuilder(driver, mouse=finger, duration=30)
    builder.pointer_action.move_to(pad, *points[0]).pointer_down()
    for x, y in points[1:]:
        builder.pointer_action.move_to(pad, x, y)
    builder.pointer_action.pointer_up()
    builder.perform()


def wait_for_prediction(driver):
    WebDriverWait(driver, 60).until(
        lambda d: (
            d.find_element(By.ID, "label").text not in ("", "–")
            and d.find_element(By.ID, "val-0").text != ""
        )
    )
    # label, bars and the highlighted bar in one script call: read one by one, an answer
    # still arriving for the rest of the stroke could change some in between (a sum of 95.7%
    # was seen; so could the best bar, read after the label)
    label, texts, best = driver.execute_script(
        "return [document.getElementById('label').textContent,"
        " [...document.querySelectorAll('.bar-value')].map(e => e.textContent),"
        " [...document.querySelectorAll('.bar-fill.best')].map(e => e.id)];"
    )
    return label, [float(t.rstrip("%")) for t in texts], best


def test_draw_a_digit_in_chromium(browser, mlp_run, tmp_path):
    proc, url = serve(mlp_run)
    try:
        browser.get(url)
        WebDriverWait(browser, 60).until(
            lambda d: "parameters" in d.find_element(By.ID, "model").text
        )
        assert len(browser.find_elements(By.CSS_SELECTOR, ".bar-track")) == 10
        pad = browser.find_element(By.ID, "pad")

        draw_with_mouse(browser, pad, SEVEN)
        label, values, best = wait_for_prediction(browser)
        assert label in [str(i) for i in range(10)]
        assert sum(values) == pytest.approx(100, abs=1.0)  # ten bars of probabilities
        assert best == [f"bar-{label}"]
        # the 28x28 input and the first-layer units are drawn
        ink = browser.execute_script(
            "const c = document.getElementById('input28').getContext('2d');"
            "return c.getImageData(0, 0, 28, 28).data.reduce((a, b) => a + b, 0);"
        )
        assert ink > 28 * 28 * 255  # more than the opaque alpha channel alone
        assert len(browser.find_elements(By.CSS_SELECTOR, "#explain .tile")) > 0
        assert browser.find_element(By.ID, "error").text == ""
        browser.save_screenshot(str(tmp_path / "serve.png"))

        browser.find_element(By.ID, "clear").click()
        WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "label").text == "–")
        draw_with_finger(browser, pad, ONE)
        label, values, best = wait_for_prediction(browser)
        assert best == [f"bar-{label}"]
        assert sum(values) == pytest.approx(100, abs=1.0)

        # an image without ink gets no made-up answer (it was "5, 97.6% sure")
        Image.new("L", (200, 200), 255).save(tmp_path / "blank.png")
        browser.find_element(By.ID, "upload").send_keys(str(tmp_path / "blank.png"))
        WebDriverWait(browser, 30).until(
            lambda d: "no ink" in d.find_element(By.ID, "confidence").text
        )
        assert browser.find_element(By.ID, "label").text == "–"
        assert all(e.text == "" for e in browser.find_elements(By.CSS_SELECTOR, ".bar-value"))
        assert not browser.find_elements(By.CSS_SELECTOR, "#explain .tile")

        # a drawing's answers still on their way must not overwrite the upload that replaced
        # it (a stroke's last PNG is encoded asynchronously; CI once saw its answer land last)
        browser.find_element(By.ID, "clear").click()
        draw_with_mouse(browser, pad, SEVEN)
        browser.find_element(By.ID, "upload").send_keys(str(tmp_path / "blank.png"))
        WebDriverWait(browser, 30).until(
            lambda d: "no ink" in d.find_element(By.ID, "confidence").text
        )
        time.sleep(1.5)  # let any late answer for the drawing arrive
        assert browser.find_element(By.ID, "label").text == "–"
        assert all(e.text == "" for e in browser.find_elements(By.CSS_SELECTOR, ".bar-value"))
        # nothing failed in the console (the page once asked for a missing /favicon.ico)
        assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
    finally:
        stop(proc)
    assert (tmp_path / "serve.png").stat().st_size > 10_000
    if os.environ.get("BARENET_UPDATE_DOCS") == "1":
        DOCS_PNG.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp_path / "serve.png", DOCS_PNG)
