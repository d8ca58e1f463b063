"""Named datasets (MNIST, Fashion-MNIST, Kuzushiji-MNIST, EMNIST's six splits): where their files
are, or where to download them from.

Search order for the two files of a split, stopping at the first folder that has both (each
as ``name.gz`` or un-gzipped ``name``):

1. ``data_dir`` (else env ``SCRATCHNN_DATA``), its ``<dataset>/`` subfolder first, then where
   torchvision keeps the dataset under the same root (``MNIST/raw/``; or ``raw/``, for a
   ``data_dir`` that is torchvision's ``MNIST/`` folder), if those folders exist;
2. ``/usr/share/datasets/<dataset>/`` (Debian packages Fashion-MNIST there);
3. the user cache ``$XDG_CACHE_HOME/scratchnn/<dataset>/`` (default ``~/.cache/...``);
4. a download from the dataset's mirrors (env ``SCRATCHNN_MIRRORS`` replaces them) into the
   cache: streamed to a temp file, checked against the published checksums, then renamed.
   EMNIST publishes all its splits in one zip: the first download of any of them fetches the
   archive once, copies every split's files into their own cache folders, and deletes it.

Checksums describe the published downloads only; local files (Debian recompressed its copies)
are checked by the IDX reader instead.
"""
from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from .download import CacheUnwritable, CutOff, RemoteFile, expire_parts, fetch, sweep_interrupted
from .idx import read_idx_pair

SPLITS = ("train", "test")
SYSTEM_DIR = Path("/usr/share/datasets")  # module-level so tests can monkeypatch it
BLOCK = 1 << 20


@dataclass(frozen=True)
class Archive:
    """One published zip holding the files of several datasets, each as member ``folder + name``;
    downloaded into the cache folder ``home`` and deleted once they are copied out. ``about``
    says what it is, for the line that announces the download."""
    file: RemoteFile
    folder: str
    home: str
    about: str


@dataclass(frozen=True)
class DatasetSpec:
    """A named dataset: files per split (images, labels), mirrors (base URLs), class names; the
    archive the files come in, if any; whether its images are stored transposed (rows and
    columns swapped) and the label of its first class, both undone as it is loaded;
    ``torchvision``: the folder torchvision.datasets keeps its files in (``root/MNIST/raw/``)."""
    name: str
    train: tuple[RemoteFile, RemoteFile]
    test: tuple[RemoteFile, RemoteFile]
    mirrors: tuple[str, ...]
    classes: tuple[str, ...]
    archive: Archive | None = None
    transposed: bool = False
    first_label: int = 0
    torchvision: str = ""

    def files(self, split: str) -> tuple[RemoteFile, RemoteFile]:
        """(images, labels) of ``split`` ("train" or "test")."""
        if split not in SPLITS:
            raise DataError(f"{self.name}: unknown split {split!r}; choose 'train' or 'test'")
        return self.train if split == "train" else self.test


MNIST = DatasetSpec(
    name="mnist",
    train=(RemoteFile("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
           RemoteFile("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432")),
    test=(RemoteFile("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3",
                     "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
          RemoteFile("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c",
                     "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6")),
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",
             "https://storage.googleapis.com/cvdf-datasets/mnist/",
             "http://yann.lecun.com/exdb/mnist/"),
    classes=tuple(str(digit) for digit in range(10)),
    torchvision="MNIST",
)

FASHION_MNIST = DatasetSpec(
    name="fashion-mnist",
    train=(RemoteFile("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
           RemoteFile("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe")),
    test=(RemoteFile("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
          RemoteFile("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310")),
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
             "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    torchvision="FashionMNIST",
)

# Kuzushiji-MNIST (Clanuwat et al. 2018): ten cursive hiragana from Japanese books of the Edo
# period, in MNIST's format and sizes, named as the authors romanise them; harder than the digits
KMNIST = DatasetSpec(
    name="kmnist",
    train=(RemoteFile("train-images-idx3-ubyte.gz", "bdb82020997e1d708af4cf47b453dcf7"),
           RemoteFile("train-labels-idx1-ubyte.gz", "e144d726b3acfaa3e44228e80efcd344")),
    test=(RemoteFile("t10k-images-idx3-ubyte.gz", "5c965bf0a639b31b8f53240b1b52f4d7"),
          RemoteFile("t10k-labels-idx1-ubyte.gz", "7320c461ea6c1c855c0b718fb2a4b134")),
    mirrors=("https://codh.rois.ac.jp/kmnist/dataset/kmnist/", "http://codh.rois.ac.jp/kmnist/dataset/kmnist/"),
    classes=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
    torchvision="KMNIST",
)

# EMNIST (Cohen et al. 2017): NIST's handwritten digits and letters in MNIST's format, 28x28, each
# image stored transposed. Its six splits come in one zip of half a gigabyte, checked against the MD5 that
# torchvision publishes. The letters split merges capitals and small letters into 26 classes,
# numbered from 1; balanced and bymerge merge the 15 letters whose capital and small forms look alike.
EMNIST_ZIP = Archive(RemoteFile("gzip.zip", "58c8d27c78d21e728a6bc7b3cc06412e", max_bytes=600 << 20),
                     folder="gzip/", home="emnist", about="NIST's gzip.zip of all six EMNIST splits (half a gigabyte)")
EMNIST_MIRRORS = ("https://biometrics.nist.gov/cs_links/EMNIST/",)
DIGITS_NAMES = tuple("0123456789")
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
MERGED = DIGITS_NAMES + tuple(LETTERS + "abdefghnqrt")  # the 11 small letters unlike their capitals kept


def _emnist(split: str, classes: str | tuple[str, ...], first_label: int = 0) -> DatasetSpec:
    def pair(part: str) -> tuple[RemoteFile, RemoteFile]:
        return (RemoteFile(f"emnist-{split}-{part}-images-idx3-ubyte.gz"),
                RemoteFile(f"emnist-{split}-{part}-labels-idx1-ubyte.gz"))
    return DatasetSpec(f"emnist-{split}", pair("train"), pair("test"), EMNIST_MIRRORS, tuple(classes), EMNIST_ZIP,
                       transposed=True, first_label=first_label, torchvision="EMNIST")  # its raw/: un-gzipped


EMNIST = (_emnist("letters", LETTERS.lower(), first_label=1), _emnist("digits", DIGITS_NAMES),
          _emnist("mnist", DIGITS_NAMES), _emnist("balanced", MERGED), _emnist("bymerge", MERGED),
          _emnist("byclass", DIGITS_NAMES + tuple(LETTERS + LETTERS.lower())))
DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in (MNIST, FASHION_MNIST, KMNIST, *EMNIST)}


def get_dataset(name: str) -> DatasetSpec:
    """The spec of a named dataset; DataError listing the known names otherwise."""
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}") from None


def cache_dir(name: str) -> Path:
    """``$XDG_CACHE_HOME/scratchnn/<name>``, or ``~/.cache/scratchnn/<name>``."""
    # the XDG spec says to ignore a relative XDG_CACHE_HOME
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".cache"
    return root / "scratchnn" / name


def load_dataset(name: str, split: str = "train", data_dir=None, *, download: bool = True,
                 progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (N, 28, 28), upright, and labels uint8 (N,) in 0..C-1 of a named dataset's split."""
    spec = get_dataset(name)
    images_path, labels_path = locate(name, split, data_dir, download=download, progress=progress)
    images, labels = read_idx_pair(images_path, labels_path, num_classes=len(spec.classes) + spec.first_label)
    if spec.first_label:
        low = int(labels.min(initial=spec.first_label))
        if low < spec.first_label:
            raise DataError(f"{labels_path}: label {low} is below {spec.first_label}, where {name}'s classes "
                            "start; the file is damaged or not this dataset's")
        labels = labels - np.uint8(spec.first_label)
    if spec.transposed:
        images = np.ascontiguousarray(images.transpose(0, 2, 1))
    return images, labels


def locate(name: str, split: str, data_dir=None, *, download: bool = True, mirrors=None,
           progress: bool = True) -> tuple[Path, Path]:
    """Paths (images, labels) of a split, searched in the order above, downloaded if need be.

    ``mirrors`` (base URLs) overrides env ``SCRATCHNN_MIRRORS``, which replaces the built-in ones.
    """
    spec = get_dataset(name)
    files = spec.files(split)
    cache = cache_dir(name)
    if download:  # a week-old part of any dataset's download goes (download.KEEP_PART_FOR)
        expire_parts(cache.parent)
    mine = _search_folders(spec, data_dir)
    if mine and not mine[-1][0].is_dir():  # a typo downloaded, and the run said it read the folder
        root, label = mine[-1]
        raise DataError(f"{label} {root}: no such folder; give the folder that holds {files[0].name} and "
                        f"{files[1].name} (or {name}/ with them)")
    places = mine + [(SYSTEM_DIR / name, ""), (cache, "")]
    for folder, _ in places:
        found = [_find(folder, remote.name) for remote in files]
        if all(found):
            if folder == cache and download:  # what downloads that another one finished left (the review)
                for remote in files:
                    sweep_interrupted(cache, remote.name)
            return found[0], found[1]
    if download:
        urls = _mirrors(spec, mirrors)
        problem = (_download_archive(spec, urls, progress) if spec.archive else
                   _download_missing(files, cache, urls, progress))
        found = [_find(cache, remote.name) for remote in files]  # the un-gzipped one, if that was there
        if all(found):  # (or put there by another process downloading at the same time, as sweeps do)
            return found[0], found[1]
        problem = f"download failed ({problem})"
    else:
        problem = "downloads are off"
    looked = ", ".join(str(folder) + (f" ({label})" if label else "") for folder, label in places)
    origin = f" (in {spec.archive.folder} of {spec.archive.file.name})" if spec.archive else ""
    raise DataError(f"{name}: {split} files not found. Looked in: {looked}; {problem}. Put {files[0].name} "
                    f"and {files[1].name}{origin} in one of those folders, or pass --data-dir DIR (in Python "
                    "data_dir=DIR), or set SCRATCHNN_DATA=DIR.")


def _search_folders(spec: DatasetSpec, data_dir) -> list[tuple[Path, str]]:
    """The user's folders, labelled by where they came from; ``<dir>/<name>`` first, so one root
    can hold several datasets whose files share the same names; torchvision's folders of the
    dataset under it next, where they exist (a learner who has MNIST from torchvision points
    --data-dir at the root they gave it, or at its MNIST/)."""
    if data_dir:  # "" means not set (config files have no null)
        root, label = Path(data_dir), "--data-dir"
    elif os.environ.get("SCRATCHNN_DATA"):
        root, label = Path(os.environ["SCRATCHNN_DATA"]), "SCRATCHNN_DATA"
    else:
        return []
    # raw/ only under the dataset's own folder: Fashion-MNIST's files have MNIST's names (the review)
    torchvision = [root / spec.torchvision / "raw", *[root / "raw"] * (root.name == spec.torchvision)] \
        if spec.torchvision else []
    return [(root / spec.name, label), *((folder, label) for folder in torchvision if folder.is_dir()), (root, label)]


def _find(folder: Path, gz_name: str) -> Path | None:
    """``folder/x.gz`` or the un-gzipped ``folder/x``, whichever exists (the .gz first)."""
    for candidate in (folder / gz_name, folder / gz_name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def _mirrors(spec: DatasetSpec, mirrors) -> list[str]:
    """Base URLs to try: the argument, else env SCRATCHNN_MIRRORS (comma-separated), else the spec's."""
    if isinstance(mirrors, str):
        mirrors = [mirrors]
    if mirrors is None:
        env = [url.strip() for url in os.environ.get("SCRATCHNN_MIRRORS", "").split(",") if url.strip()]
        mirrors = env or spec.mirrors
    return list(mirrors)


def _download_missing(files, cache: Path, mirrors: list[str], progress: bool) -> str | None:
    """Download the files the cache lacks; None on success, else why the first missing file failed."""
    if not mirrors:
        return "no mirrors to try"
    created = [folder for folder in (cache, cache.parent) if not folder.exists()]
    for remote in files:
        if _find(cache, remote.name):
            continue
        failures = []
        for base in mirrors:
            url = base.rstrip("/") + "/" + remote.name
            try:
                problem = _fetch_again_if_cut_off(url, remote, cache, progress)
            except CacheUnwritable as error:  # every mirror would fail alike, after downloading it all
                return str(error)
            if problem is None:
                break
            failures.append(f"{url}: {problem}")
        else:
            for folder in created:  # leave no empty folders behind either
                try:
                    folder.rmdir()
                except OSError:
                    pass
            return "; ".join(failures)
    return None


TRIES = 5  # of one file from one mirror, while each try that is cut off gets somewhere


def _fetch_again_if_cut_off(url: str, remote: RemoteFile, cache: Path, progress: bool) -> str | None:
    """``fetch``, tried again when the connection is cut off mid-file (one mirror: one drop was
    fatal), asking for the rest only (a server that ignores this sends the whole file again):
    once more in any case, and up to TRIES times while each try ends further into the file than
    any before it (a server that starts again each time and is cut off earlier is not tried on)."""
    problem, furthest = None, 0
    for tried in range(TRIES):
        partial = problem.partial if isinstance(problem, CutOff) else None
        if progress:  # said on any output (a log, CI), where no bar is drawn
            rest = f", asking for the rest from byte {partial.received:,}" if partial and partial.received else ""
            print(f"Downloading {url} into {cache}{' again' * bool(tried)}{rest}", file=sys.stderr)
        problem = fetch(url, remote, cache, progress, partial)
        if not isinstance(problem, CutOff):
            return problem
        if problem.partial is not partial:  # a new file (fetch started afresh after a 416): its own progress
            furthest = 0
        if tried and problem.partial.received <= furthest:
            break
        furthest = problem.partial.received
    received = problem.partial.received  # given up: what came is kept for the next try (download.KEEP_PART_FOR)
    if not received:
        problem.partial.tmp.unlink(missing_ok=True)
        return str(problem)
    return f"{problem} (the {received:,} bytes received are kept: the next try continues from there)"


def _download_archive(spec: DatasetSpec, mirrors: list[str], progress: bool) -> str | None:
    """Download ``spec``'s archive and copy the files of every dataset that comes in it into their
    cache folders; None on success, else why not. The archive is deleted once they are out."""
    archive, home = spec.archive, cache_dir(spec.archive.home)
    zipped = home / archive.file.name
    if zipped.is_file():  # left by an unpacking that failed, or put there by hand: checked first
        found = _md5(zipped)
        if found != archive.file.md5:
            return f"{zipped} is not {archive.file.name} as published (MD5 {found}, expected {archive.file.md5}); " \
                   "delete it and it is downloaded again"
    elif progress:
        print(f"{spec.name}: downloading {archive.about} once; its files go to {home.parent}", file=sys.stderr)
    problem = _download_missing([archive.file], home, mirrors, progress)
    if problem is not None:
        return problem
    members = {archive.folder + remote.name: cache_dir(other.name) / remote.name
               for other in DATASETS.values() if other.archive == archive for remote in other.train + other.test}
    from .archive import unpack  # zipfile and lzma: for EMNIST's archive only

    problem = unpack(zipped, members, archive.file.max_bytes)
    if problem is None:
        zipped.unlink(missing_ok=True)  # another process may have unpacked it too
    return problem


def _md5(path: Path) -> str | None:
    """The MD5 of a file, read block by block; None if it cannot be read."""
    digest = hashlib.md5()
    try:
        with open(path, "rb") as stream:
            while block := stream.read(BLOCK):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()
