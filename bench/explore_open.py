"""How big is an explorer page, and how long does it take to open? (headless Chromium, Selenium)

    python bench/explore_open.py PAGE.html [PAGE2.html ...] [--repeats 3]

For each page: its size, and the time from asking Chromium to open it until the plot's canvas is drawn
(polled every 50 ms; the median of ``--repeats`` fresh loads in one browser), plus the browser's own
``domContentLoaded`` and ``load`` times. Writes ``bench/results/explore_open.json``. Needs Debian's
``chromium`` and ``chromium-driver``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CANVASES = """
const found = [];
const walk = (root) => { for (const el of root.querySelectorAll('*')) {
  if (el.tagName === 'CANVAS') found.push(el); if (el.shadowRoot) walk(el.shadowRoot); } };
walk(document);
return found.filter((c) => c.width > 100 && c.height > 100).length;
"""


def browser():
    """Headless Chromium (Selenium), with name resolution disabled: the page must need no network."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1000,1000",
                 "--host-resolver-rules=MAP * ~NOTFOUND"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)


def open_time(driver, page: Path) -> dict[str, float]:
    """Seconds until the canvas is drawn, and the browser's navigation timings."""
    driver.get("about:blank")
    start = time.perf_counter()
    driver.get(page.resolve().as_uri())
    while not driver.execute_script(CANVASES):
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    nav = driver.execute_script("const t = performance.timing; return [t.domContentLoadedEventEnd - "
                                "t.navigationStart, t.loadEventEnd - t.navigationStart];")
    return {"canvas_s": seconds, "dom_content_loaded_s": nav[0] / 1000, "load_s": nav[1] / 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pages", nargs="+", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "explore_open.json")
    args = parser.parse_args()
    driver = browser()
    rows = []
    try:
        for page in args.pages:
            runs = [open_time(driver, page) for _ in range(args.repeats)]
            row = {"page": page.name, "mb": round(page.stat().st_size / 2**20, 2), "repeats": args.repeats,
                   **{k: round(statistics.median(r[k] for r in runs), 2) for k in runs[0]}}
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        driver.quit()
    args.out.write_text(json.dumps({"pages": rows, "machine": f"{platform.machine()}, 2 cores shared (under load)",
                                    "browser": "Debian chromium, headless"}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
