"""The gallery's word on a run folder whose config.toml cannot be read: the reason in the
operator's log, and on the page a pointer to it (it sent users to `evaluate`, which said nothing)."""
import logging

from scratchnn.web.gallery import GalleryData


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
