"""The page end to end in a real headless Chromium: `scratchnn serve` in a subprocess, Playwright
drawing a "1" with the mouse, uploading a photo, opening the gallery and the model tab.

Uses Debian's /usr/bin/chromium (``playwright install`` is never run). Without it, or without
Playwright, the tests skip, except under CI (any non-empty CI), where they fail: CI must run them.
"""
import colorsys
import contextlib
import http.client
import http.server
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from web_support import missing, photo_of_one, train_tiny_model

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def sync_playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("Playwright for Python is not installed: pip install -e '.[test]'")
    if not CHROMIUM.exists():
        missing(f"{CHROMIUM} not found: apt-get install chromium (.ci/run does)")
    return sync_playwright


@pytest.fixture(scope="module")
def model_path(shared_dir, tmp_path_factory):
    return train_tiny_model(shared_dir, tmp_path_factory.getbasetemp() / "web-model")


@contextlib.contextmanager
def serving(model, *args, cwd=None):
    """`scratchnn serve MODEL --port P ARGS` in a subprocess (in ``cwd``, default this folder);
    yields its base URL once it answers, and stops it after."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # another working directory: PYTHONPATH entries made absolute, so the same code is served
    path = os.pathsep.join(os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)
    process = subprocess.Popen([sys.executable, "-m", "scratchnn", "serve", str(model), "--port", str(port), *args],
                               cwd=cwd, env={**os.environ, "PYTHONPATH": path}, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/model", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"scratchnn serve did not start: {process.communicate()[0]}")
            time.sleep(0.2)
    try:
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def server(model_path):
    with serving(model_path, "--tta", "2") as url:
        yield url


@pytest.fixture(scope="module")
def browser(sync_playwright):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    """A fresh page on the server that records every request it makes and every script error."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    requests, errors = [], []
    page.on("request", lambda request: requests.append(request.url))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.goto(server)
    page.wait_for_function("() => document.querySelector('#model-line').textContent.includes('parameters')")
    page.expects_failed_loads = False  # a test that breaks requests on purpose sets it
    yield page
    context.close()
    if page.expects_failed_loads:
        errors = [e for e in errors if not e.startswith("Failed to load resource")]
    assert errors == [], errors
    outside = [url for url in requests if not url.startswith((server + "/", "data:", "blob:"))]
    assert outside == [], f"the page made requests outside the server: {outside}"


def draw_stroke(page, points, steps=12):
    """Drag the mouse through ``points`` given as fractions (x, y) of the drawing pad."""
    box = page.locator("#pad").bounding_box()
    at = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*at[0])
    page.mouse.down()
    for point in at[1:]:
        page.mouse.move(*point, steps=steps)
    page.mouse.up()


def test_a_click_on_the_pad_asks_for_more_ink_and_sends_nothing(page):
    """A click is a dot: the network would read it as some digit with confidence, so the page asks
    for more, sends nothing and shows no answer; drawing on from there sends the digit."""
    sent = []
    page.on("request", lambda request: "/api/predict" in request.url and sent.append(request.url))
    draw_stroke(page, [(0.9, 0.1)])
    page.wait_for_function("() => document.querySelector('#status').textContent.startsWith('Keep drawing')")
    page.wait_for_timeout(300)
    assert sent == [] and page.locator("#prediction").inner_text() == "?"
    assert "error" not in (page.locator("#status").get_attribute("class") or "")
    draw_stroke(page, [(0.52, 0.18), (0.5, 0.5), (0.48, 0.82)])
    page.wait_for_function("() => document.querySelector('#confidence').textContent.includes('% sure')")
    assert sent


def test_an_answer_never_stays_beside_an_error_and_a_server_that_is_gone_is_named(page):
    """The page audit: '3, 99.9 % sure' stayed on screen beside 'Failed to fetch'."""
    page.expects_failed_loads = True
    draw_stroke(page, [(0.52, 0.18), (0.5, 0.5), (0.48, 0.82)])
    page.wait_for_function("() => document.querySelector('#confidence').textContent.includes('% sure')")
    assert "% sure." in page.locator("#status").inner_text()  # the answer is in the line read aloud
    page.route("**/api/predict", lambda route: route.abort())
    draw_stroke(page, [(0.3, 0.5), (0.7, 0.5)])
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('not answering')")
    assert page.locator("#status").inner_text().startswith("The scratchnn server is not answering: is 'scratchnn "
                                                          "serve' still running?")
    assert page.locator("#prediction").inner_text() == "?"
    page.unroute("**/api/predict")
    # uvicorn's connection cap answers a plain-text 503, with no JSON detail: the page says what it means
    page.route("**/api/predict", lambda route: route.fulfill(status=503, body="Service Unavailable",
                                                             content_type="text/plain"))
    draw_stroke(page, [(0.3, 0.6), (0.7, 0.6)])
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('busy')")
    assert page.locator("#status").inner_text().startswith("The scratchnn server is busy (too many connections")
    page.unroute("**/api/predict")
    page.click("#clear")
    page.fill("#brush", "40")
    for row in range(12):  # paint the whole pad: that is no digit, and the server says what to do
        draw_stroke(page, [(0.0, row / 11), (1.0, row / 11)], steps=4)
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('press Clear')")
    assert page.locator("#prediction").inner_text() == "?"


def test_a_digit_only_a_few_pen_widths_tall_gets_a_tip(page):
    """The class audit: small 3s, 5s and 7s drawn with the default brush came back as 8s, silently."""
    draw_stroke(page, [(0.5, 0.38), (0.5, 0.62)])  # a short 1: 89 pixels of a 22-pixel pen
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('Tip')")  # once it ends
    assert "Tip: it is only 4.1 pen widths tall; draw it bigger" in page.locator("#status").inner_text()
    page.click("#clear")
    draw_stroke(page, [(0.52, 0.18), (0.5, 0.5), (0.48, 0.82)])
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('% sure')")
    assert "Tip" not in page.locator("#status").inner_text()


def test_undo_takes_back_the_last_stroke(page):
    assert page.locator("#undo").is_disabled()
    draw_stroke(page, [(0.52, 0.18), (0.5, 0.5), (0.48, 0.82)])  # a 1 ...
    page.wait_for_function("() => document.querySelector('#prediction').textContent === '1'")
    draw_stroke(page, [(0.2, 0.3), (0.8, 0.3)])  # ... crossed out
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('% sure')")
    page.keyboard.press("Control+z")
    page.wait_for_function("() => document.querySelector('#prediction').textContent === '1'")
    page.focus("#undo")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('#prediction').textContent === '?'")
    assert page.locator("#undo").is_disabled()
    # the a11y audit: the keyboard's focus fell to <body> with the button disabled under it
    assert page.evaluate("document.activeElement.id") == "clear"
    draw_stroke(page, [(0.52, 0.18), (0.5, 0.5), (0.48, 0.82)])
    draw_stroke(page, [(0.2, 0.3), (0.8, 0.3)])
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('% sure')")
    page.click("#clear")  # Clear forgets the strokes: Ctrl+Z after it brings nothing back
    assert page.locator("#undo").is_disabled()
    page.focus("#pad")
    page.keyboard.press("Control+z")
    assert page.evaluate("() => document.querySelector('#pad').getContext('2d').getImageData(0, 0, 280, 280)"
                         ".data.some((v, i) => i % 4 === 0 && v > 0)") is False


def test_a_digit_drawn_with_the_keyboard_alone_gets_an_answer(page):
    """The a11y audit: without a mouse, a finger or a pen there was no way to draw. The arrow keys
    move a pen, Space puts it down and lifts it; Undo takes the keyboard's stroke back too."""
    page.focus("#tab-button-draw")
    page.keyboard.press("Tab")  # from the tabs to the pad
    assert page.evaluate("document.activeElement.id") == "pad"
    assert "arrow keys" in page.locator("#pad").get_attribute("aria-label")
    assert page.locator("#pen").is_visible()
    for _ in range(7):
        page.keyboard.press("ArrowUp")  # from the middle to the top
    # where the pen is is said, its latest place only (the accessibility audit: only the ring showed it)
    page.wait_for_function("() => document.querySelector('#announce').textContent === "
                           "'Pen up, 50 % across, 15 % down.'")
    page.keyboard.press("Space")
    assert "down" in page.locator("#pen").get_attribute("class")
    assert page.locator("#status").get_attribute("aria-live") == "off"  # as for a pointer's stroke
    for _ in range(14):
        page.keyboard.press("ArrowDown")
    page.keyboard.press("Shift+ArrowLeft")
    page.keyboard.press("Space")
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('% sure')")
    assert page.locator("#prediction").inner_text() == "1"
    assert page.evaluate("window.scrollY") == 0  # Space and the arrows did not scroll the page
    page.keyboard.press("Control+z")
    page.wait_for_function("() => document.querySelector('#prediction').textContent === '?'")
    page.keyboard.press("Tab")
    assert not page.locator("#pen").is_visible()  # the ring shows only while the pad has the focus


def test_the_status_line_is_silent_mid_stroke_and_its_milliseconds_are_not_read_out(page):
    """The a11y audit: the status line (a live region) changed some 40 times in one stroke, each
    time with new milliseconds, and a screen reader read out one answer after another."""
    box = page.locator("#pad").bounding_box()
    page.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + 0.15 * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + 0.6 * box["height"], steps=8)
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('% sure')")
    assert page.locator("#status").get_attribute("aria-live") == "off"  # mid-stroke
    page.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + 0.85 * box["height"], steps=4)
    page.mouse.up()
    assert page.locator("#status").get_attribute("aria-live") == "polite"
    page.wait_for_load_state("networkidle")
    status = page.locator("#status")
    assert " ms on the server" in status.inner_text()  # still shown
    spoken = status.evaluate("e => [...e.childNodes].filter((n) => !n.getAttribute?.('aria-hidden'))"
                             ".map((n) => n.textContent).join('')")
    assert spoken.startswith("Your drawing: ") and "% sure" in spoken and " ms" not in spoken, spoken


def test_a_photo_of_a_number_is_read_digit_by_digit(page, shared_dir):
    """The page read a number's ink as one digit and sent the learner to the command line."""
    import io

    from PIL import Image

    from scratchnn.data import read_idx_pair
    images, _ = read_idx_pair(shared_dir / "datasets/mnist/t10k-images-idx3-ubyte.gz",
                              shared_dir / "datasets/mnist/t10k-labels-idx1-ubyte.gz")
    number = np.hstack([np.pad(images[i], 4) for i in (0, 1, 2)])  # 7, 2, 1 as a photo: dark on white
    buffer = io.BytesIO()
    Image.fromarray(255 - number).resize((number.shape[1] * 4, number.shape[0] * 4)).save(buffer, "PNG")
    page.set_input_files("#upload", files=[{"name": "721.png", "mimeType": "image/png", "buffer": buffer.getvalue()}])
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('digit by digit')")
    status = page.locator("#status").inner_text()
    assert status.startswith("Photo 721.png, 3 digits, each ") and status.count(" %") == 3, status
    said = page.locator("#prediction").inner_text()  # the answer panel shows the number, not one digit
    assert len(said) == 3 and status.endswith(f": {said}, read digit by digit."), (said, status)


def test_a_photo_bigger_than_the_server_takes_is_made_smaller_first(page):
    """Phone photos are 3-8 MB and the server takes 5: the page sends a smaller JPEG of it."""
    import io

    from PIL import Image
    photo = Image.open(io.BytesIO(photo_of_one(size=(1600, 2000)))).convert("RGB")
    buffer = io.BytesIO()
    photo.save(buffer, "BMP")  # 9.6 MB uncompressed
    assert buffer.tell() > 6 * 2**20
    page.set_input_files("#upload", files=[{"name": "big.bmp", "mimeType": "image/bmp", "buffer": buffer.getvalue()}])
    page.wait_for_function("() => document.querySelector('#status').textContent.startsWith('Photo big.bmp')",
                           timeout=20_000)
    assert page.locator("#prediction").inner_text() == "1"


def test_drawing_a_one_shows_a_prediction_and_bars(page, artifacts_dir):
    # Time from the end of the stroke to the last change of the answer on screen.
    page.evaluate("""() => {
        window.strokeEnded = null; window.answerShown = null;
        document.querySelector('#pad').addEventListener('pointerup', () => { window.strokeEnded = performance.now(); });
        new MutationObserver(() => { window.answerShown = performance.now(); })
            .observe(document.querySelector('#confidence'), {childList: true, characterData: true, subtree: true});
    }""")
    assert "none" in page.locator("#prediction").get_attribute("class")  # "?" is no answer: not in its colour
    draw_stroke(page, [(0.52, 0.18), (0.5, 0.5), (0.48, 0.82)])
    page.wait_for_function("() => window.answerShown !== null && window.strokeEnded !== null "
                           "&& window.answerShown > window.strokeEnded")
    page.wait_for_load_state("networkidle")
    latency = page.evaluate("() => window.answerShown - window.strokeEnded")

    assert page.locator("#prediction").inner_text() == "1"
    red, green, blue = map(int, page.locator("#prediction").evaluate("e => getComputedStyle(e).color")[4:-1].split(","))
    hue = colorsys.rgb_to_hsv(red / 255, green / 255, blue / 255)[0] * 360
    assert 30 < hue < 330, f"the answer is drawn in a red (hue {hue:.0f}), the colour of errors"
    assert "% sure" in page.locator("#confidence").inner_text()
    bars = page.locator("#bars li")
    assert bars.count() == 10
    assert page.locator("#bars li.win .bar-label").inner_text() == "1"
    winner_width = page.locator("#bars li.win .bar-fill").evaluate("e => e.getBoundingClientRect().width")
    assert winner_width > 0
    assert page.locator("#layers canvas.strip").count() == 1  # one hidden layer of 64 units
    seen_ink = page.evaluate("""() => {
        const data = document.querySelector('#seen').getContext('2d').getImageData(0, 0, 28, 28).data;
        let ink = 0; for (let i = 0; i < data.length; i += 4) ink += data[i] > 128; return ink; }""")
    assert 10 < seen_ink < 200, "the 28x28 view should show a thin stroke"

    shot = artifacts_dir / "web-drawn-one.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"\nscreenshot: {shot}  (answer {latency:.0f} ms after the stroke ended)")
    assert shot.stat().st_size > 10_000
    # NOTE: a loose bound against hangs on a loaded CI machine; the 100 ms target is measured by
    # benchmarks/web_benchmark.py, not asserted here
    assert latency < 2000, f"the answer came {latency:.0f} ms after the stroke ended"

    page.click("#clear")
    assert page.locator("#prediction").inner_text() == "?"


def test_upload_gallery_and_model_tabs(page, artifacts_dir):
    page.set_input_files("#upload", files=[{"name": "one.png", "mimeType": "image/png", "buffer": photo_of_one()}])
    page.wait_for_function("() => document.querySelector('#status').textContent.startsWith('Photo one.png')")
    assert page.locator("#prediction").inner_text() == "1"

    page.click("#tab-button-gallery")
    page.wait_for_selector("#gallery .tile")
    assert page.locator("#gallery-set option[value=test]").is_disabled()  # a CSV run has no test split
    assert "none in this data" in page.locator("#gallery-set option[value=test]").inner_text()  # and says so
    assert page.locator("#gallery .tile").count() == 24
    assert "of 1,000 dev digits are wrong" in page.locator("#gallery-status").inner_text()
    tile = page.locator("#gallery .tile").first
    label, said = tile.locator("b").inner_text(), tile.locator("i").inner_text().split()[0]
    caption = tile.locator("i")
    assert "\u00a0%)" in caption.inner_text() and caption.evaluate("e => getComputedStyle(e).whiteSpace") == "nowrap"
    assert len(caption.evaluate("e => Array.from(e.getClientRects()).map(r => r.top)")) == 1, "a caption broke"
    tile.click()
    page.wait_for_function("() => document.querySelector('#status').textContent.startsWith('Image ')")
    assert page.locator("#tab-draw").is_visible() and not page.locator("#tab-gallery").is_visible()
    assert page.locator("#prediction").inner_text() == said != label
    assert page.evaluate("document.activeElement.id") == "tab-button-draw"  # not lost to <body>
    page.keyboard.press("ArrowRight")  # the tab strip takes the arrow keys
    assert page.locator("#tab-gallery").is_visible() and page.evaluate("document.activeElement.id") == \
        "tab-button-gallery"
    page.keyboard.press("ArrowLeft")
    assert page.locator("#tab-draw").is_visible()

    page.click("#tab-button-model")
    assert page.locator("#model-layers tbody tr").count() == 3
    assert "784 → 64 → 10" in page.locator("#model-facts").inner_text()
    assert "TTA x2" in page.locator("#model-line").inner_text()
    assert "x2: the image and 1 fixed view of it" in page.locator("#model-facts").inner_text()
    page.screenshot(path=str(artifacts_dir / "web-model-tab.png"), full_page=True)


def test_a_stroke_over_a_photo_starts_afresh_and_undo_takes_it_back_to_a_blank_pad(page):
    """Drawing over a photo wipes it first; the pad as it was before the stroke, kept for Undo, is
    the wiped one (kept before the wipe, Undo was enabled and did nothing: the second review)."""
    page.set_input_files("#upload", files=[{"name": "one.png", "mimeType": "image/png", "buffer": photo_of_one()}])
    page.wait_for_function("() => document.querySelector('#status').textContent.startsWith('Photo one.png')")
    draw_stroke(page, [(0.2, 0.3), (0.8, 0.3)])
    page.wait_for_function("() => !document.querySelector('#undo').disabled")
    page.click("#undo")
    assert page.locator("#undo").is_disabled()
    assert page.evaluate("() => document.querySelector('#pad').getContext('2d').getImageData(0, 0, 280, 280)"
                         ".data.some((v, i) => i % 4 === 0 && v > 0)") is False


def test_a_model_of_other_classes_asks_for_one_of_them(browser, tmp_path):
    """A model of twelve classes named a..l (letters, say) is not asked for a digit."""
    import numpy as np

    from scratchnn.data import write_idx
    from scratchnn.training.config import TrainConfig
    from scratchnn.training.run import train_run

    labels = np.arange(240, dtype=np.uint8) % 12
    write_idx(tmp_path / "images-idx3-ubyte", np.random.default_rng(0).integers(0, 255, (240, 28, 28), np.uint8))
    write_idx(tmp_path / "labels-idx1-ubyte", labels)
    config = TrainConfig(hidden=[8], epochs=1, batch_size=60, dev_size=40, images=str(tmp_path / "images-idx3-ubyte"),
                         labels=str(tmp_path / "labels-idx1-ubyte"), class_names="a,b,c,d,e,f,g,h,i,j,k,l",
                         doctor="off").validate()
    train_run(config, tmp_path / "run", progress=False, log=lambda line: None)
    with serving(tmp_path / "run") as url:
        page = browser.new_page()
        page.goto(url)
        page.wait_for_function("() => document.querySelector('#tagline').textContent.startsWith('Draw one of a, b')")
        assert page.title() == "scratchnn: draw one of its classes"
        assert page.locator("#pad-title").inner_text() == "Your drawing"
        assert page.locator("#status").inner_text().startswith("Draw one of its 12 classes (a, b, c, …)")
        assert page.locator("#gallery-title").inner_text() == "Images the model gets wrong"
        page.close()


class PrefixProxy(http.server.ThreadingHTTPServer):
    """A reverse proxy as nginx's plainest block does it (``location /digits/ { proxy_pass
    http://upstream/; }``): the prefix taken off, the Host set to the upstream's own address."""

    daemon_threads = True

    def __init__(self, upstream: str, prefix: str):
        self.upstream, self.prefix = urllib.parse.urlsplit(upstream), prefix
        super().__init__(("127.0.0.1", 0), ProxyHandler)


class ProxyHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass

    def forward(self):
        proxy = self.server
        if not self.path.startswith(proxy.prefix):
            self.send_error(404)
            return
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection", "content-length")}
        connection = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=30)
        connection.request(self.command, "/" + self.path[len(proxy.prefix):], body=body or None, headers=headers)
        answer = connection.getresponse()
        data = answer.read()
        self.send_response(answer.status)
        for key, value in answer.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        connection.close()

    do_GET = do_POST = forward


def test_the_page_works_under_a_path_prefix_behind_a_proxy_that_rewrites_the_host(browser, server):
    """The deployment audit: under /digits/ the page's /static and /api paths missed the prefix (it
    stayed on "Loading the model..."), and behind a proxy that passes its own Host every drawing was
    refused as another site's (403)."""
    proxy = PrefixProxy(server, "/digits/")
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{proxy.server_address[1]}/digits/"
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    statuses: list[tuple[int, str]] = []
    page.on("response", lambda response: statuses.append((response.status, response.url)))
    try:
        page.goto(base)
        page.wait_for_function("() => document.querySelector('#model-line').textContent.includes('parameters')")
        draw_stroke(page, [(0.5, 0.15), (0.5, 0.85)])  # a 1
        page.wait_for_function("() => document.querySelector('#confidence').textContent.includes('% sure')")
    finally:
        context.close()
        proxy.shutdown()
    assert [s for s in statuses if s[0] >= 400] == [], statuses
    assert all(url.startswith(base) for _, url in statuses), statuses
    assert any(url == base + "api/predict" for _, url in statuses)


def test_a_finished_strokes_answer_is_said_once(page):
    """The accessibility audit: after release the status line changed twice, ~50 ms apart: the
    answer to a request sent mid-stroke, then the stroke's own; a screen reader read both."""
    page.evaluate("""() => {
        window.said = [];
        new MutationObserver(() => window.ended && window.said.push(document.querySelector('#status').textContent))
            .observe(document.querySelector('#status'), {childList: true, characterData: true, subtree: true});
    }""")
    box = page.locator("#pad").bounding_box()
    page.mouse.move(box["x"] + 0.3 * box["width"], box["y"] + 0.2 * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + 0.7 * box["width"], box["y"] + 0.2 * box["height"], steps=6)
    page.mouse.move(box["x"] + 0.45 * box["width"], box["y"] + 0.85 * box["height"], steps=24)
    page.evaluate("() => { window.ended = true; }")  # (what changes from now on is read out)
    page.mouse.up()
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(300)
    answers = [text for text in page.evaluate("() => window.said") if "% sure" in text]
    assert len(answers) == 1, answers
