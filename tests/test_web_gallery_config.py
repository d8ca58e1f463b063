"""The gallery's word on a run folder whose config.toml cannot be read: the reason in the
operator's log, and on the page a pointer to it (it sent users to `evaluate`, which said nothing)."""
import logging
import re

import pytest

from scratchnn.io import read_metadata
from scratchnn.web.gallery import GalleryData, GalleryUnavailable
from test_report import small_csv, tiny_run


def test_an_unreadable_run_config_is_explained_in_the_log_not_by_a_command_that_succeeds(tmp_path, caplog):
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.safetensors").write_bytes(b"")  # never read: the gallery reads the folder's config only
    (run / "config.toml").write_text('epochs = "many"\n')
    with caplog.at_level(logging.WARNING, logger="scratchnn.web"):
        gallery = GalleryData(run / "model.safetensors", {})
    assert gallery.config is None
    assert gallery.problem == ("the run's config.toml cannot be read, so the gallery cannot rebuild its dev split; "
                               "the server's log says why")
    assert any("epochs must be a whole number, got 'many'" in record.getMessage() for record in caplog.records)


def test_a_run_without_dev_images_says_so_and_what_to_show_instead(shared_dir, tmp_path):
    """The shapes audit: a run trained with --dev-size 0 gave an empty dev set, read as 0/0."""
    run = tiny_run(small_csv(shared_dir, tmp_path), tmp_path / "run", dev_size=0)
    gallery = GalleryData(run / "model.safetensors", read_metadata(run))
    nothing = ("the run held out no dev images (--dev-size 0) and csv digits.csv has no test split: the gallery has "
               "no set to show (drawing and photos work as ever)")
    with pytest.raises(GalleryUnavailable, match=f"^{re.escape(nothing)}$"):
        gallery.load("dev")
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from scratchnn.web.app import create_app
    from web_support import LOCAL_BASE_URL

    with TestClient(create_app(run / "model.safetensors"), base_url=LOCAL_BASE_URL) as client:
        assert client.get("/api/model").json()["gallery_sets"] == []  # the combinations audit: it offered dev
        for which in ("dev", "test"):  # the advice audit: test was told "choose dev", dev "no dev set"
            answer = client.get("/api/gallery", params={"set": which})
            assert answer.status_code == 409 and answer.json()["detail"] == nothing, answer.text


def test_an_ensemble_whose_members_read_their_sets_otherwise_shows_no_gallery_evaluate_would_refuse(shared_dir,
                                                                                                   tmp_path):
    """The combinations audit: serve A T (T trained with --transpose) fed T the first member's images,
    156 mistakes where each read its own way makes 131; serve A B (another seed) scored one member on
    the other's training images. evaluate refuses both; the page now says why instead."""
    from scratchnn.web.inference import ModelService

    csv = small_csv(shared_dir, tmp_path)
    a, t, b, c = (tiny_run(csv, tmp_path / name, **changes) for name, changes in
                  (("a", {}), ("t", {"transpose": True}), ("b", {"seed": 2}), ("c", {"split_seed": 1, "seed": 3})))
    with pytest.raises(GalleryUnavailable, match=r"^the ensemble's members were trained with and without "
                                                 r"--transpose, so they read the same files differently; the gallery "
                                                 r"shows members trained alike$"):
        ModelService([a, t]).gallery.load("dev")
    with pytest.raises(GalleryUnavailable, match=r"^the ensemble's members hold out other dev images \(other data, "
                                                 r"seed or dev size\), so the gallery would score one member's"):
        ModelService([a, b]).gallery.load("dev")
    images, labels, _ = ModelService([a, c]).gallery.load("dev")  # members of one split: shown, as ever
    assert len(images) == len(labels) == 100
