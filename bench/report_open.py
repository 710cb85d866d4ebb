"""How long a report.html takes to open in headless Chromium (Playwright).

    python bench/report_open.py outputs/<benchmark folder>/report.html [--repeat 5]

Prints, per opening, the seconds until the page's load event and until every <audio> player has
read its clip's header (readyState >= 1), then the median of each, the page's size and the CPU.
The browser is started once before the clock; each opening uses a fresh page (no cache between
openings: a new browser context each time).
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
PLAYERS_READY = """() => { const a = [...document.querySelectorAll('audio')];
    return a.length > 0 && a.every(x => x.readyState >= 1); }"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if not args.page.is_file():
        raise SystemExit(f"error: {args.page} does not exist; pass the report.html a compare or sweep printed")
    from playwright.sync_api import sync_playwright

    from labutils.speed import cpu_info

    loads, players = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            for _ in range(args.repeat):
                context = browser.new_context()
                page = context.new_page()
                page.set_default_timeout(60_000)
                start = time.perf_counter()
                page.goto(args.page.resolve().as_uri(), wait_until="load")
                loads.append(time.perf_counter() - start)
                page.wait_for_function(PLAYERS_READY)
                players.append(time.perf_counter() - start)
                n_players = page.eval_on_selector_all("audio", "els => els.length")
                context.close()
        finally:
            browser.close()
    size = args.page.stat().st_size / 2**20
    for i, (a, b) in enumerate(zip(loads, players), 1):
        print(f"opening {i}: load event {a:.2f} s, every player's header {b:.2f} s")
    print(f"median: load event {statistics.median(loads):.2f} s, players {statistics.median(players):.2f} s; "
          f"{n_players} players, {size:.1f} MB; CPU {cpu_info()['cpu']}")


if __name__ == "__main__":
    main()
