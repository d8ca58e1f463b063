"""The Train and Runs tabs from the keyboard and a screen reader's side, in Debian's headless
Chromium against `scratchnn serve` on the 2,000-digit seed run (the accessibility audit): the
keyboard's focus never falls to <body> when the button under it is disabled."""
import re
import time

from test_web_browser import CHROMIUM, CHROMIUM_ARGS, browser, sync_playwright  # noqa: F401
# the Train tab's own browser tests' seed run and server, one of each for this module too
from test_web_train_browser import close_page, open_page, runs, server, set_option  # noqa: F401

FOCUSED = "(e => e.id || e.getAttribute('aria-label') || e.tagName)(document.activeElement)"


def status_is(page, *words, timeout=30_000):
    """Wait until the Train tab's progress line contains one of ``words``."""
    page.wait_for_function(f"() => {list(words)!r}.some((w) => "
                           "document.querySelector('#train-progress').textContent.includes(w))", timeout=timeout)


def test_start_and_stop_keep_the_keyboard_focus_on_a_button_and_the_charts_say_their_values(browser, server):
    """Start disabled itself under the keyboard (and Stop, once pressed): the focus fell to <body>,
    and the next Tab started again from the top of the page. The charts were canvases with only a
    name ("Loss curves"): their labels now give the latest values."""
    page = open_page(browser, server)
    try:
        page.click("#tab-button-train")
        page.click("#train-settings-box summary")
        set_option(page, "epochs", 200)
        set_option(page, "eval_every", 1)
        page.focus("#train-start")
        page.keyboard.press("Enter")
        status_is(page, "epoch ")
        assert page.evaluate(FOCUSED) == "train-stop"  # Start is disabled while the run is on
        page.wait_for_function("() => document.querySelector('#train-loss').getAttribute('aria-label')"
                               ".startsWith('Loss at')")
        loss, accuracy = (page.locator(f"#train-{chart}").get_attribute("aria-label") for chart in ("loss", "accuracy"))
        number = r"\d+\.\d\d"
        assert re.fullmatch(rf"Loss at epoch \d+ of 200: train {number}, dev {number}; last batch {number}", loss), loss
        assert re.fullmatch(r"Accuracy at epoch \d+ of 200: train [\d.]+ %, dev [\d.]+ %", accuracy), accuracy
        assert page.locator("#train-loss").get_attribute("role") == "img"
        # the dev curves are dashed, and so is their key: train and dev differed by colour only
        assert page.evaluate("getComputedStyle(document.querySelector('.k-dev')).borderTopStyle") == "dashed"
        page.keyboard.press("Enter")  # Stop
        status_is(page, "stopped")
        assert page.evaluate(FOCUSED) == "train-start"  # Stop is disabled once the run has ended
    finally:
        close_page(page, server)


def test_load_in_the_runs_table_keeps_the_focus_on_the_rebuilt_row(browser, server):
    """Load rebuilds the Runs table: the pressed button was gone and the focus with it. The
    comparison's lines differed only in colour, and its canvas said no value."""
    page = open_page(browser, server)
    try:
        page.click("#tab-button-runs")
        page.locator("#runs-table input[aria-label='compare base']").check()
        page.wait_for_function("() => document.querySelector('#runs-chart').dataset.series === '1'")
        said = page.locator("#runs-chart").get_attribute("aria-label")
        assert re.search(r"base \(solid line\): [\d.]+ % at epoch 20$", said), said
        load = page.locator("#runs-table button", has_text="Load").first
        name = load.get_attribute("aria-label")
        assert name.startswith("Load "), name  # a screen reader's list of buttons says which run
        load.evaluate("button => { button.old = true; }")
        load.focus()
        page.keyboard.press("Enter")
        page.wait_for_function(f"() => (b => b && !b.old)(document.querySelector('[aria-label=\"{name}\"]'))")
        page.wait_for_load_state("networkidle")  # the table is built twice: for the new model, and by Load itself
        assert page.evaluate(FOCUSED) == name
    finally:
        close_page(page, server)


def test_a_refused_setting_is_announced_marked_described_and_focused(browser, server):
    """'--lr must be in (0, 1000000], got -5' went into a line no screen reader reads out, and
    nothing told which field it was about."""
    page = open_page(browser, server)
    try:
        page.click("#tab-button-train")
        page.click("#train-settings-box summary")
        set_option(page, "lr", -5)
        page.focus("#train-start")
        page.keyboard.press("Enter")
        page.wait_for_selector("#train-opt-lr[aria-invalid=true]")
        error = page.locator("#train-progress").inner_text()
        assert error.startswith("--lr must be in (0, "), error
        page.wait_for_function("(said) => document.querySelector('#announce').textContent.includes(said)", arg=error)
        assert page.evaluate(FOCUSED) == "train-opt-lr"
        described = page.evaluate("() => document.querySelector('#train-opt-lr').getAttribute('aria-describedby')"
                                  ".split(' ').map((id) => document.getElementById(id).textContent).join(' ')")
        assert error in described and "learning rate" in described  # the error, and the setting's help
        set_option(page, "lr", 0.1)
        set_option(page, "epochs", 0)
        page.focus("#train-start")
        page.keyboard.press("Enter")
        page.wait_for_selector("#train-opt-epochs[aria-invalid=true]")
        assert page.evaluate(FOCUSED) == "train-opt-epochs"
        assert page.locator("#train-opt-lr").get_attribute("aria-invalid") is None  # a setting the server took
        assert page.locator("#train-opt-lr").get_attribute("aria-describedby") == "train-opt-lr-help"
    finally:
        close_page(page, server)


def test_a_runs_findings_and_its_end_are_heard_together_and_progress_at_a_pace_one_can_follow(browser, server):
    """The announcement region was replaced within a frame: a diverging run's findings and its end
    line came in one, and only the end could be heard; a seed run said four evaluations a second;
    Pause was never said; and the region sat inside the Train tab, out of the accessibility tree
    while another tab showed (the accessibility audit)."""
    page = open_page(browser, server)
    try:
        page.evaluate("""() => {
            window.heard = [];  // what the region held at each change, as a screen reader reads it
            new MutationObserver(() => window.heard.push(document.querySelector('#announce').textContent))
                .observe(document.querySelector('#announce'), {childList: true, characterData: true, subtree: true});
        }""")
        assert page.evaluate("() => document.querySelector('#announce').closest('[role=tabpanel]')") is None
        page.click("#tab-button-train")
        page.select_option("#train-preset", "mlp")
        page.click("#train-settings-box summary")
        set_option(page, "epochs", 200)
        set_option(page, "eval_every", 1)
        started = time.monotonic()
        page.click("#train-start")
        page.wait_for_function("() => Number(document.querySelector('#train-loss').dataset.points) > 20")
        time.sleep(9)  # an evaluation's accuracy is said by now, however recently the replay of the last run spoke
        page.click("#train-pause")
        page.wait_for_function("() => window.heard.some((said) => said.endsWith('paused.'))")
        page.click("#train-pause")  # Resume
        page.wait_for_function("() => window.heard.some((said) => said.endsWith('running again.'))")
        time.sleep(2)
        page.click("#train-stop")
        status_is(page, "stopped", timeout=60_000)
        page.wait_for_function("() => window.heard.some((said) => said.includes(' stopped'))")
        progress = [said for said in page.evaluate("() => window.heard") if "Epoch " in said]
        most = 2 + (time.monotonic() - started) / 8  # one every 8 s: an evaluation each iteration was 4 a second
        assert 1 <= len(progress) <= most, progress
        page.select_option("#train-preset", "seed")  # (its settings still open)
        set_option(page, "lr", 50)
        set_option(page, "epochs", 30)
        page.click("#train-start")
        status_is(page, "failed", "finished", timeout=120_000)
        page.wait_for_function("() => window.heard.some((said) => said.includes('The doctor:') && "
                               "(said.includes('failed') || said.includes('finished')))")
    finally:
        close_page(page, server)


def test_the_runs_tab_fits_a_phone_without_scrolling_sideways(browser, server):
    """At 320 px the Runs table's hidden header words sat 688 px into the page, which scrolled
    sideways; the scrolling tables had no name (the accessibility audit)."""
    page = open_page(browser, server, width=320, height=640)
    try:
        page.click("#tab-button-runs")
        page.wait_for_selector("#runs-table button")
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 320
        assert page.title().endswith(" · Runs")  # the tab in the title: it said "draw a digit" on every tab
        rows = page.evaluate("() => new Set([...document.querySelectorAll('.tabs button')]"
                             ".map((b) => b.getBoundingClientRect().top)).size")
        assert rows == 1  # the five tabs on one line, as the style sheet meant (a later rule made it two)
        assert page.evaluate("() => [...document.querySelectorAll('.table-wrap')].every((wrap) => "
                             "wrap.getAttribute('role') === 'region' && wrap.getAttribute('aria-label'))")
    finally:
        close_page(page, server)


def test_the_gallery_keeps_the_keyboards_tile_and_forced_colours_keep_the_pen(browser, server):
    """The accessibility audit: the served model changing rebuilt the gallery and dropped the focus
    to <body>; in a high-contrast theme the keyboard's pen was forced black on the black pad."""
    page = open_page(browser, server)
    try:
        page.click("#tab-button-gallery")
        page.wait_for_selector("#gallery .tile")
        page.locator("#gallery .tile").nth(4).focus()
        page.evaluate("() => { document.querySelector('#gallery').firstElementChild.old = true;"
                      " document.dispatchEvent(new CustomEvent('modelchanged')); }")
        page.wait_for_function("() => !document.querySelector('#gallery').firstElementChild.old")  # rebuilt
        assert page.evaluate("() => [...document.querySelectorAll('#gallery .tile')]"
                             ".indexOf(document.activeElement)") == 4
    finally:
        close_page(page, server)
    context = browser.new_context(forced_colors="active")
    page = context.new_page()
    try:
        page.goto(server)
        page.focus("#pad")
        adjusted = page.evaluate("() => (p => p && getComputedStyle(p).forcedColorAdjust)"
                                 "(document.querySelector('.pen'))")
        assert adjusted == "none", adjusted
    finally:
        context.close()


def test_settings_being_typed_are_kept_when_another_page_starts_a_run(browser, server):
    """The accessibility audit: another visitor's Start replaced the settings this page was typing,
    the focused field included, without a word."""
    typing, starting = open_page(browser, server), open_page(browser, server)
    try:
        typing.click("#tab-button-train")
        typing.click("#train-settings-box summary")
        typing.fill("#train-opt-lr", "0.5")  # (an input event, as typing gives)
        starting.click("#tab-button-train")
        starting.click("#train-start")
        typing.wait_for_function("() => document.querySelector('#announce').textContent.includes('Another page "
                                 "started')", timeout=30_000)
        assert typing.input_value("#train-opt-lr") == "0.5"
        status_is(starting, "finished", "stopped", "failed", timeout=120_000)
    finally:
        close_page(typing, server)
        close_page(starting, server)
