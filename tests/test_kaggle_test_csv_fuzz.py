"""Hostile label-less CSVs (Kaggle's test.csv form) for ``read_kaggle_test_csv``: mutated valid
files give images or one DataError line naming the file, in bounded memory; a file with a label
column is refused unless the labels are to be ignored."""
import gzip

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_data_fuzz import FUZZ, assert_refused_or_read, mutations

from scratchnn.data.kaggle_csv import read_kaggle_test_csv
from scratchnn.data.kaggle_write import write_kaggle_csv
from scratchnn.errors import DataError

pytestmark = pytest.mark.slow  # hypothesis (a few seconds)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz-test-csv")


@pytest.fixture(scope="module")
def seeds(folder):
    """Label-less files: with and without the header, gzipped, CRLF; and one training file."""
    images = np.random.default_rng(1).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    test = write_kaggle_csv(folder / "test.csv", images).read_bytes()
    train = write_kaggle_csv(folder / "train.csv", images, np.array([1, 2, 3], np.uint8)).read_bytes()
    return [test, test.split(b"\n", 1)[1], gzip.compress(test, 1), test.replace(b"\n", b"\r\n"), train]


@FUZZ
@given(data=st.data())
def test_test_csv_reader_on_mutated_files(folder, seeds, data):
    mutated = data.draw(mutations(seeds, idx=False))
    assert_refused_or_read(read_kaggle_test_csv, folder / "mutated.csv", mutated)


@FUZZ
@given(text=st.text(st.sampled_from(list("0123456789,\r\n pixel\"")), max_size=4000))
def test_test_csv_reader_on_csv_like_text(folder, text):
    assert_refused_or_read(read_kaggle_test_csv, folder / "text.csv", text.encode())


def test_the_seeds_read_back_and_labels_are_refused(folder, seeds):
    path = folder / "seed.csv"
    for data in seeds[:4]:
        path.write_bytes(data)
        assert read_kaggle_test_csv(path).shape == (3, 28, 28)
    path.write_bytes(seeds[4])
    with pytest.raises(DataError, match="has a label column"):
        read_kaggle_test_csv(path)
    assert read_kaggle_test_csv(path, ignore_labels=True).shape == (3, 28, 28)
