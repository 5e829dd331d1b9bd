"""The app in a real browser: headless Chromium (Debian's `chromium`) driven by Playwright.

Asks the miniature an easy example in Auto mode and a hard question in Think mode, opens the reasoning
block, and saves the page to docs/app_screenshot.png (the README shows it).
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest  # noqa: E402
import torch  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.is_file():
    pytest.skip(f"no Chromium at {CHROMIUM}: install it with `apt-get install -y chromium`", allow_module_level=True)

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from autothink_lite.app_ui import ChatEngine, build_app, launch  # noqa: E402

MODEL = os.environ.get("AUTOTHINK_TEST_MODEL", "mini")
# The README's screenshot: refreshed only when asked (AUTOTHINK_UPDATE_SCREENSHOT=1), so a test run never
# edits a tracked file; otherwise the shot goes to the test's temporary folder.
README_SCREENSHOT = Path(__file__).parents[1] / "docs" / "app_screenshot.png"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def app_url():
    torch.set_num_threads(1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = launch(build_app(ChatEngine.load(MODEL)), port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield demo.local_url
    finally:
        demo.close()


@pytest.fixture(scope="module")
def page(app_url):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1200, "height": 1150})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(app_url)
        yield page
        browser.close()


def test_a_browser_user_sees_the_models_choice_its_reasoning_and_the_answer(page, tmp_path):
    question = page.get_by_placeholder("e.g. What is 478 * 6?")
    badges = page.locator(".message-content .at-badge")

    example = page.get_by_text(re.compile(r"^Level 1: ")).first
    example.click()
    expect(question).to_have_value(example.inner_text().removeprefix("Level 1: "))
    page.get_by_role("button", name="Ask").click()
    expect(badges.first).to_contain_text(re.compile(r"chose: (think|no-think)"))

    page.get_by_label("Think", exact=True).check()
    question.fill("What is 478 * 6?")
    question.press("Enter")
    expect(badges.nth(1)).to_contain_text("forced: think")
    expect(badges.nth(1)).to_contain_text(re.compile(r"reasoning \d+ tok"))
    reply = page.locator(".message-content").last
    expect(reply).to_contain_text("answer is")
    expect(reply).to_contain_text(re.compile(r"answer is[\s\S]*\d"))  # right or wrong: level 5 thinking slips

    thought = page.get_by_text(re.compile(r"^Thought for \d+ tokens$")).last  # the level-1 reply may think too
    reasoning = page.get_by_text(re.compile(r"478\*6:48->8")).first  # the working starts from the units
    expect(thought).to_be_visible()
    expect(reasoning).to_be_hidden()  # a finished reasoning block is collapsed
    for _ in range(3):  # the event's closing update can re-render the block (closed) just after a click
        if not reasoning.is_visible():
            thought.click()
        page.wait_for_timeout(400)
    expect(reasoning).to_be_visible()

    page.locator(".bubble-wrap").evaluate("el => { el.scrollTop = el.scrollHeight; }")
    shot = README_SCREENSHOT if os.environ.get("AUTOTHINK_UPDATE_SCREENSHOT") == "1" else tmp_path / "app.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000
