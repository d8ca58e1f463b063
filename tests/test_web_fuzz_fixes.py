"""What the web fuzz audit found: each request once answered a 500, accepted nonsense, or
answered with the wrong reason."""
import numpy as np
from web_support import require  # noqa: E402

require("fastapi", "pip install -e '.[web]'")

from test_web_train import client, runs  # noqa: E402,F401 (fixtures)

from scratchnn.web.hosts import host_name  # noqa: E402
from scratchnn.web.train_api import _last_event_id  # noqa: E402


def test_digits_that_are_not_ascii_are_no_event_id_or_port():
    """'²:³' passed str.isdigit() and int() raised: a plain-text 500 from the event stream."""
    assert _last_event_id("\xb2:\xb3") == (0, 0) and _last_event_id("1:\xb9") == (0, 0)
    assert _last_event_id("3:120") == (3, 120)
    assert host_name("localhost:\xb2") is None and host_name("localhost:8000") == "localhost"


def test_every_bad_run_name_gets_the_friendly_404_not_a_pattern(client):  # noqa: F811
    for name in ("~", "*", "%2e%2e", "%e2%80%ae"):
        answer = client.get(f"/api/runs/{name}/curves")
        assert answer.status_code == 404 and "String should match pattern" not in answer.text, (name, answer.text)


def test_threads_are_the_servers_not_a_setting_a_page_sends(client):  # noqa: F811
    """Offered in GET /api/train, a page's threads = 1,000,000 was accepted and thrown away."""
    assert "threads" not in [option["name"] for option in client.get("/api/train").json()["options"]]
    answer = client.post("/api/train", json={"preset": "seed", "threads": 4})
    assert answer.status_code == 422 and "unknown setting(s) 'threads'" in answer.text


def test_an_empty_canvas_is_no_digit_even_unprocessed(client):  # noqa: F811
    answer = client.post("/api/predict", json={"pixels": np.zeros((28, 28)).tolist(), "preprocess": False})
    assert answer.status_code == 422 and "the canvas is empty" in answer.text


def test_a_multipart_body_its_parser_refuses_is_a_400_on_any_starlette(client, monkeypatch):  # noqa: F811
    """The dependency audit: before Starlette 1.7, python-multipart's own parse error (a ValueError)
    left request.form() unwrapped, and `boundary=x` with a body of one NUL byte was a 500."""
    import starlette.requests

    async def old_form(self, **limits):
        raise ValueError("Did not find boundary character 0 at index 2")  # python-multipart's MultipartParseError

    monkeypatch.setattr(starlette.requests.Request, "form", old_form)
    answer = client.post("/api/predict", content=b"\x00", headers={"content-type": "multipart/form-data; boundary=x"})
    assert answer.status_code == 400, answer.text
    assert answer.json()["detail"] == ("the multipart body cannot be read (Did not find boundary character 0 at "
                                       "index 2); send the photo in the field 'file', as curl -F file=@photo.png does")


def test_pixels_that_are_no_image_are_told_what_the_pixels_take(client):  # noqa: F811
    """The advice audit: {"pixels": [1, 2]} was "pixels[0]: Input should be a valid array (and 1 more problem)"."""
    answer = client.post("/api/predict", json={"pixels": [1, 2]})
    assert answer.status_code == 422 and answer.json()["detail"].endswith(
        "; pixels is a list of rows of numbers 0..1 (ink 1), 28x28 to 280x280"), answer.text
