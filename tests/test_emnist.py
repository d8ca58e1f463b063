"""EMNIST's six splits as named datasets: one archive downloaded once from a local http.server,
every split copied out of it, images turned upright and letters numbered from 0."""
import dataclasses
import hashlib
import io
import zipfile

import numpy as np
import pytest
from test_sources import Server

from scratchnn.cli.main import main
from scratchnn.data import sources
from scratchnn.data.idx import write_idx
from scratchnn.data.sources import get_dataset, load_dataset
from scratchnn.errors import DataError
from scratchnn.io import read_metadata


def split_files(folder, name, labels):
    """IDX files of one EMNIST split as NIST stores them: each image transposed. Image k holds a
    bright row k % 28 (so upright, a row; as stored, a column)."""
    images = np.zeros((len(labels), 28, 28), np.uint8)
    images[np.arange(len(labels)), np.arange(len(labels)) % 28] = 255
    for part in ("train", "test"):
        write_idx(folder / f"emnist-{name}-{part}-images-idx3-ubyte.gz", images.transpose(0, 2, 1))
        write_idx(folder / f"emnist-{name}-{part}-labels-idx1-ubyte.gz", np.asarray(labels, np.uint8))
    return images


def zipped(folder, names) -> bytes:
    """A zip of the files of ``names`` under gzip/, as NIST's gzip.zip holds them."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for path in sorted(folder.iterdir()):
            if any(path.name.startswith(f"emnist-{name}-") for name in names):
                archive.write(path, "gzip/" + path.name)
    return buffer.getvalue()


@pytest.fixture
def served(env, tmp_path, monkeypatch):
    """A mirror with a small gzip.zip of every split, registered with its MD5; empty caches."""
    files, www = tmp_path / "files", tmp_path / "www"
    files.mkdir(), www.mkdir()
    upright = {name: split_files(files, name, labels) for name, labels in
               [("letters", np.arange(60) % 26 + 1), ("digits", np.arange(40) % 10), ("mnist", np.arange(30) % 10),
                ("balanced", np.arange(47)), ("bymerge", np.arange(47)), ("byclass", np.arange(62))]}
    (www / "gzip.zip").write_bytes(zipped(files, upright))
    server = Server(www)
    register(monkeypatch, hashlib.md5((www / "gzip.zip").read_bytes()).hexdigest(), server.url)
    server.upright = upright
    yield server
    server.close()


def register(monkeypatch, md5, url, **archive_file):
    """Point every EMNIST spec at the local mirror, its archive's MD5 being ``md5``."""
    archive = sources.EMNIST_ZIP
    archive = dataclasses.replace(archive, file=dataclasses.replace(archive.file, md5=md5, **archive_file))
    for spec in sources.EMNIST:
        monkeypatch.setitem(sources.DATASETS, spec.name, dataclasses.replace(spec, archive=archive, mirrors=(url,)))


def cached(tmp_path):
    root = tmp_path / "cache" / "scratchnn"
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


def test_one_download_gives_every_split_upright_with_letters_from_0(served, tmp_path):
    images, labels = load_dataset("emnist-letters", "train", progress=False)
    np.testing.assert_array_equal(images, served.upright["letters"])  # turned back upright
    np.testing.assert_array_equal(labels, np.arange(60) % 26)  # a..z as 0..25
    assert served.requests == ["/gzip.zip"]
    assert "emnist/gzip.zip" not in cached(tmp_path)  # deleted once its files are out
    files = cached(tmp_path)
    assert len(files) == 24 and "emnist-balanced/emnist-balanced-test-labels-idx1-ubyte.gz" in files
    images, labels = load_dataset("emnist-digits", "test", progress=False)
    np.testing.assert_array_equal(images, served.upright["digits"])
    assert served.requests == ["/gzip.zip"]  # found in the cache, not downloaded again


def test_a_tampered_archive_is_refused_and_leaves_nothing(served, tmp_path, monkeypatch):
    register(monkeypatch, "0" * 32, served.url)
    with pytest.raises(DataError, match="checksum mismatch") as info:
        load_dataset("emnist-letters", progress=False)
    assert "\n" not in str(info.value) and cached(tmp_path) == []


def test_a_member_larger_than_the_bound_is_not_copied(served, tmp_path, monkeypatch):
    """A small archive whose member inflates to 50 MB (a zip bomb) is refused before inflating it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("gzip/emnist-letters-train-images-idx3-ubyte.gz", bytes(50 << 20))  # copied first
    (tmp_path / "www" / "gzip.zip").write_bytes(buffer.getvalue())
    register(monkeypatch, hashlib.md5(buffer.getvalue()).hexdigest(), served.url, max_bytes=1 << 20)
    with pytest.raises(DataError) as info:
        load_dataset("emnist-mnist", progress=False)
    message = str(info.value)
    assert "download failed (gzip.zip: gzip/emnist-letters-train-images-idx3-ubyte.gz: 52,428,800 bytes, more " \
           "than the 1,048,576 a member may have)" in message and "\n" not in message
    assert not any(name.startswith("emnist-") for name in cached(tmp_path))


def test_a_damaged_member_is_named_and_nothing_half_written_stays(served, tmp_path, monkeypatch):
    data = bytearray((tmp_path / "www" / "gzip.zip").read_bytes())
    start = data.index(b"emnist-letters-train-images") + 60  # inside the member's stored bytes
    data[start] ^= 0xFF
    (tmp_path / "www" / "gzip.zip").write_bytes(bytes(data))
    register(monkeypatch, hashlib.md5(bytes(data)).hexdigest(), served.url)
    with pytest.raises(DataError) as info:
        load_dataset("emnist-letters", progress=False)
    message = str(info.value)
    assert "gzip.zip cannot be unpacked" in message and "Bad CRC-32" in message and "\n" not in message
    assert not any(name.endswith(".part") for name in cached(tmp_path))


def test_a_letters_label_of_0_is_damage(tmp_path):
    folder = tmp_path / "emnist-letters"
    folder.mkdir()
    split_files(folder, "letters", [1, 2, 0, 26])
    with pytest.raises(DataError, match="label 0 is below 1, where emnist-letters's classes start"):
        load_dataset("emnist-letters", data_dir=tmp_path, download=False)


def test_the_six_splits_and_their_classes():
    assert get_dataset("emnist-letters").classes == tuple("abcdefghijklmnopqrstuvwxyz")
    assert get_dataset("emnist-digits").classes == get_dataset("emnist-mnist").classes == tuple("0123456789")
    balanced = get_dataset("emnist-balanced").classes
    assert len(balanced) == 47 and balanced[10:13] == ("A", "B", "C") and balanced[36:] == tuple("abdefghnqrt")
    byclass = get_dataset("emnist-byclass").classes
    assert len(byclass) == len(set(byclass)) == 62 and byclass[-1] == "z"
    assert get_dataset("emnist-bymerge").classes == balanced
    assert all(spec.archive == sources.EMNIST_ZIP and spec.transposed for spec in sources.EMNIST)


def test_train_on_emnist_letters_names_the_classes_and_refuses_transpose(tmp_path, capsys):
    folder = tmp_path / "emnist-letters"
    folder.mkdir()
    split_files(folder, "letters", np.arange(300) % 26 + 1)
    run = tmp_path / "run"
    assert main(["train", "--dataset", "emnist-letters", "--data-dir", str(tmp_path), "--dev-size", "50",
                 "--epochs", "1", "--no-report", "--out", str(run)]) == 0
    assert read_metadata(run)["classes"] == list("abcdefghijklmnopqrstuvwxyz")
    assert "my-drawing.png" in capsys.readouterr().out
    assert main(["train", "--dataset", "emnist-letters", "--data-dir", str(tmp_path), "--transpose",
                 "--out", str(tmp_path / "other")]) == 1
    assert "--transpose" in capsys.readouterr().err and not (tmp_path / "other").exists()


def test_two_processes_downloading_at_once_both_get_the_files(served, tmp_path, monkeypatch):
    """A sweep's workers may all start on a fresh machine: one unpacks and deletes the archive
    while another is about to unpack it; the other finds the files in the cache all the same."""
    from scratchnn.data import archive as unpacking  # sources imports it when it unpacks

    real = unpacking.unpack

    def unpacked_by_another_first(archive, members, max_bytes):
        assert real(archive, members, max_bytes) is None  # the other process, done first
        archive.unlink()  # ... and the archive deleted under us
        return real(archive, members, max_bytes)

    monkeypatch.setattr(unpacking, "unpack", unpacked_by_another_first)
    images, _ = load_dataset("emnist-letters", progress=False)
    np.testing.assert_array_equal(images, served.upright["letters"])


def test_an_archive_left_in_the_cache_is_checked_before_it_is_unpacked(served, tmp_path):
    home = tmp_path / "cache" / "scratchnn" / "emnist"
    home.mkdir(parents=True)
    (home / "gzip.zip").write_bytes(zipped(tmp_path / "files", ["letters"]))  # a zip, but not the published one
    with pytest.raises(DataError) as info:
        load_dataset("emnist-letters", progress=False)
    message = str(info.value)
    assert f"{home / 'gzip.zip'} is not gzip.zip as published (MD5" in message, message
    assert "delete it and it is downloaded again" in message and "\n" not in message
    assert served.requests == [] and (home / "gzip.zip").exists()  # kept: what to do with it is the user's call
    (home / "gzip.zip").unlink()
    images, _ = load_dataset("emnist-letters", progress=False)
    np.testing.assert_array_equal(images, served.upright["letters"])
