"""The report page in a real browser (Debian's Chromium through Playwright): its players load
their audio and its summary table shows the CSV's numbers.

Needs /usr/bin/chromium and the playwright package: without them the test skips, except under
CI, where it fails.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from labutils import report as R

from test_browser import CHROMIUM, CHROMIUM_ARGS, _need_browser
from test_report import csv_numbers, fake_benchmark

pytestmark = [pytest.mark.browser]



def test_report_players_load_and_table_equals_csv(tmp_path: Path):
    _need_browser()
    from playwright.sync_api import sync_playwright

    folder = fake_benchmark(tmp_path)
    page_path = R.benchmark_report(folder)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            page.goto(page_path.as_uri(), wait_until="load")
            # every player has read its clip's header: readyState >= HAVE_METADATA, a finite duration
            page.wait_for_function("""() => { const a = [...document.querySelectorAll('audio')];
                return a.length > 0 && a.every(x => x.readyState >= 1 && isFinite(x.duration) && x.duration > 0); }""")
            durations = page.eval_on_selector_all("audio", "els => els.map(e => [e.duration, +e.dataset.seconds])")
            cells = page.eval_on_selector_all("#summary td[data-key]",
                                              "els => els.map(e => [e.dataset.row, e.dataset.key, e.textContent])")
            # spectrograms load lazily (a long page opens faster): ask for all of them, then look
            page.evaluate("() => document.querySelectorAll('img').forEach(i => { i.loading = 'eager'; })")
            page.wait_for_function("() => [...document.querySelectorAll('img')].every(i => i.complete)")
            images = page.eval_on_selector_all("img", "els => els.map(e => e.naturalWidth > 0 && e.naturalHeight > 0)")
        finally:
            browser.close()
    assert len(durations) == 10 and all(abs(d - s) < 0.05 for d, s in durations), durations
    expected = csv_numbers(folder / "summary.csv")
    assert len(cells) > 20
    assert all(text == expected[(row, key)] for row, key, text in cells), \
        [(row, key, text, expected[(row, key)]) for row, key, text in cells if text != expected[(row, key)]]
    assert len(images) == 10 and all(images)
