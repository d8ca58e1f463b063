"""Look at a run report the way a reader will: a full-page screenshot in headless Chromium.

    python benchmarks/report_screenshot.py runs/X/report.html [more.html ...] [--out DIR] [--width 1280]

Writes <report stem>-<run folder>.png (into --out, default: beside each report) and prints,
for each page, what a reader would notice: any request that is not a data: URI or the page
itself (the report must make none), images that did not decode, figures wider than the page
(horizontal scrolling) and the page size. Needs Debian's ``chromium`` and ``pip install
playwright`` (the system browser is used; no browser download). A tool for humans: it asserts
nothing and exits 0 unless the browser cannot start.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]

CHECK_PAGE = """() => ({
  images: [...document.images].map(i => ({alt: i.alt, ok: i.complete && i.naturalWidth > 0,
                                         shown: i.getBoundingClientRect().width, natural: i.naturalWidth})),
  pageWidth: document.documentElement.scrollWidth, viewWidth: document.documentElement.clientWidth,
  pageHeight: document.documentElement.scrollHeight,
})"""


def screenshot(browser, report: Path, out: Path, width: int) -> None:
    page = browser.new_page(viewport={"width": width, "height": 900})
    outside = []

    def guard(route):  # anything but the page itself and data: URIs would be a network request
        url = route.request.url
        if url.startswith("data:") or url == report.as_uri():
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    page.route("**/*", guard)
    page.goto(report.as_uri(), wait_until="load")
    facts = page.evaluate(CHECK_PAGE)
    page.screenshot(path=str(out), full_page=True)
    page.close()
    broken = [i["alt"] for i in facts["images"] if not i["ok"]]
    scaled = [f"{i['alt']} ({i['shown']:.0f} of {i['natural']} px)" for i in facts["images"]
              if i["ok"] and i["shown"] < 0.5 * i["natural"] / 1.5625]  # 150 dpi shown at 96 px/in = 1/1.5625
    print(f"{report}: {len(facts['images'])} images, page {facts['pageWidth']}x{facts['pageHeight']} px "
          f"at viewport width {width} -> {out}")
    print(f"  outside requests: {outside or 'none'}")
    print(f"  images that did not load: {broken or 'none'}")
    print(f"  horizontal scrolling: {'yes' if facts['pageWidth'] > facts['viewWidth'] else 'no'}")
    if scaled:
        print(f"  shrunk to under half their size (hard to read): {', '.join(scaled)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path, metavar="REPORT.html")
    parser.add_argument("--out", type=Path, help="folder for the screenshots (default: beside each report)")
    parser.add_argument("--width", type=int, default=1280, help="viewport width in CSS px (default: 1280)")
    args = parser.parse_args(argv)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("needs Playwright for Python: pip install playwright (and apt-get install chromium)", file=sys.stderr)
        return 1
    if not Path(CHROMIUM).exists():
        print(f"no browser at {CHROMIUM}: apt-get install chromium", file=sys.stderr)
        return 1
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            for report in args.reports:
                report = report.resolve()
                folder = args.out or report.parent
                folder.mkdir(parents=True, exist_ok=True)
                screenshot(browser, report, folder / f"{report.stem}-{report.parent.name}.png", args.width)
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
