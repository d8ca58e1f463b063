"""The Train and Runs tabs from the keyboard and a screen reader's side, in Debian's headless
Chromium against `scratchnn serve` on the 2,000-digit seed run (the accessibility audit): the
keyboard's focus never falls to <body> when the button under it is disabled."""
import re

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
        assert page.locator("#train-announce").inner_text() == error  # the live region says it
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
