"""Kaggle Digit Recognizer CSV: round trips, header variants, errors that name the line."""
import gzip
import re

import numpy as np
import pytest

from scratchnn.data import kaggle_csv, kaggle_write
from scratchnn.data.idx import read_idx
from scratchnn.data.kaggle_csv import read_kaggle_csv
from scratchnn.data.kaggle_write import write_kaggle_csv
from scratchnn.errors import DataError, ShapeError

HEADER_WITHOUT_LABEL = [f"pixel{i}" for i in range(784)]  # Kaggle's test.csv
HEADER_WITH_LABEL = ["label", *HEADER_WITHOUT_LABEL]  # and its train.csv
HEADER = ",".join(HEADER_WITH_LABEL)


@pytest.fixture
def digits():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)
    images[0, 0, 0], images[0, 0, 1] = 0, 255  # both ends of the range
    return images, np.array([0, 9, 3, 3, 7, 1], np.uint8)


def rows(images, labels=None):
    """CSV text lines (no header) for images (N, 28, 28) and optional labels (N,)."""
    flat = images.reshape(len(images), -1).astype(int)
    if labels is not None:
        flat = np.column_stack([labels, flat])
    return [",".join(map(str, row)) for row in flat]


def write_text(path, lines, newline="\n"):
    path.write_text(newline.join(lines) + newline, newline="")
    return path


def assert_line_error(path, line, *words):
    with pytest.raises(DataError) as info:
        read_kaggle_csv(path)
    message = str(info.value)
    assert message.startswith(f"{path}: line {line}") and "\n" not in message, message
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("name", ["train.csv", "train.csv.gz"])
def test_round_trip_with_labels(tmp_path, digits, name):
    images, labels = digits
    path = write_kaggle_csv(tmp_path / name, images, labels)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    x, y = read_kaggle_csv(path)
    assert x.dtype == np.uint8 and x.shape == (6, 28, 28) and y.dtype == np.uint8
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)
    assert [p.name for p in tmp_path.iterdir()] == [name]  # atomic write left no temp file


def test_round_trip_without_labels(tmp_path, digits):
    path = write_kaggle_csv(tmp_path / "test.csv", digits[0].reshape(6, 784))
    assert path.read_text().splitlines()[0] == ",".join(HEADER_WITHOUT_LABEL)
    x, y = read_kaggle_csv(path)
    assert y is None
    np.testing.assert_array_equal(x, digits[0])


def test_gzip_detected_by_magic_bytes(tmp_path, digits):
    path = tmp_path / "named-plain.csv"
    path.write_bytes(gzip.compress("\n".join([HEADER, *rows(*digits)]).encode()))
    np.testing.assert_array_equal(read_kaggle_csv(path)[1], digits[1])


@pytest.mark.parametrize("with_labels", [True, False])
def test_file_without_header(tmp_path, digits, with_labels):
    labels = digits[1] if with_labels else None
    x, y = read_kaggle_csv(write_text(tmp_path / "plain.csv", rows(digits[0], labels)))
    np.testing.assert_array_equal(x, digits[0])
    assert (y is None) != with_labels
    if with_labels:
        np.testing.assert_array_equal(y, digits[1])


def test_crlf_bom_quotes_and_blank_lines(tmp_path, digits):
    quoted = ",".join(f'"{name}"' for name in HEADER_WITH_LABEL)
    lines = ["", quoted, *rows(*digits)[:3], "  ", *rows(*digits)[3:], "", ""]
    path = tmp_path / "windows.csv"
    path.write_bytes(("\ufeff" + "\r\n".join(lines)).encode())
    x, y = read_kaggle_csv(path)
    np.testing.assert_array_equal(x, digits[0])
    np.testing.assert_array_equal(y, digits[1])


def test_spaces_around_values_are_fine(tmp_path, digits):
    line = " , ".join(rows(*digits)[0].split(","))
    x, y = read_kaggle_csv(write_text(tmp_path / "spaced.csv", [HEADER, line]))
    np.testing.assert_array_equal(x[0], digits[0][0])


# --- errors, each naming the line ------------------------------------------------------------

def test_empty_file(tmp_path):
    for text in ("", "\n\n  \r\n"):
        path = tmp_path / "empty.csv"
        path.write_text(text)
        with pytest.raises(DataError, match="empty file"):
            read_kaggle_csv(path)


def test_header_only(tmp_path):
    with pytest.raises(DataError, match="no images after the header on line 1"):
        read_kaggle_csv(write_text(tmp_path / "h.csv", [HEADER]))


@pytest.mark.parametrize("header", ["lable," + ",".join(HEADER_WITHOUT_LABEL), "label,pixel0,pixel1", "a;b;c",
                                    ",".join(["1"] * 783)])
def test_header_that_is_neither_form(tmp_path, digits, header):
    path = write_text(tmp_path / "bad.csv", ["", header, *rows(*digits)])
    assert_line_error(path, 2, "header must be 'label,pixel0,...,pixel783'")


@pytest.mark.parametrize("first, named", [("id", "'id'"), ("", "with no name"), ("ImageId", "'ImageId'")])
@pytest.mark.parametrize("header", [HEADER, ",".join(HEADER_WITHOUT_LABEL)])
def test_an_id_or_pandas_index_column_is_named_with_how_to_drop_it(tmp_path, digits, first, named, header):
    """The learner-mistakes audit: 'id,label,pixel0...' and pandas' ',label,pixel0...' (to_csv with
    its index) got the generic 'header must be' line."""
    lines = [f"{first},{header}", *(f"{i},{row}" for i, row in enumerate(rows(*digits)))]
    assert_line_error(write_text(tmp_path / "id.csv", lines), 1, f"the header has an extra first column ({named}: "
                      "an id, or pandas' index saved with the file); drop that column (pandas: df.to_csv(path, "
                      "index=False))")


def test_a_headerless_file_saved_with_pandas_index_is_named(tmp_path, digits):
    """df.to_csv(path, header=False) keeps the index: 786 integers a line got the generic 'header
    must be' line; a test file's 785 (index and pixels) read the index as labels, refused only at
    line 257 as 'label 256 is outside 0..255'."""
    lines = [f"{i},{row}" for i, row in enumerate(rows(*digits))]
    assert_line_error(write_text(tmp_path / "train.csv", lines), 1, "786 integers and no header", "pandas' index",
                      "df.to_csv(path, index=False)")
    images = np.repeat(digits[0][:1], 300, axis=0)
    lines = [f"{i},{row}" for i, row in enumerate(rows(images))]
    assert_line_error(write_text(tmp_path / "test.csv", lines), 257, "label 256 is outside 0..255",
                      "the first column counts the rows", "df.to_csv(path, index=False)")
    lines = [row for row in rows(images, np.full(300, 7))]
    lines[200] = "999" + lines[200][1:]  # a label out of range far from its line's number: no such hint
    with pytest.raises(DataError) as info:
        read_kaggle_csv(write_text(tmp_path / "label.csv", lines))
    assert "label 999 is outside" in str(info.value) and "counts the rows" not in str(info.value)


def test_any_first_column_before_a_label_column_is_an_extra_one(tmp_path, digits):
    lines = [f"row,{HEADER}", *(f"{i},{row}" for i, row in enumerate(rows(*digits)))]
    assert_line_error(write_text(tmp_path / "row.csv", lines), 1, "the header has an extra first column ('row': ")


def test_wrong_column_count(tmp_path, digits):
    lines = [HEADER, *rows(*digits)]
    lines[3] = lines[3].rsplit(",", 1)[0]
    assert_line_error(write_text(tmp_path / "short.csv", lines), 4, "expected 785", "got 784")


def test_test_file_with_a_label_column_row(tmp_path, digits):
    lines = [",".join(HEADER_WITHOUT_LABEL), *rows(digits[0])]
    lines[2] = "5," + lines[2]
    assert_line_error(write_text(tmp_path / "t.csv", lines), 3, "expected 784", "got 785")


@pytest.mark.parametrize("value", ["x", "1.5", "", "1e2", "0x10"])
def test_non_integer_value(tmp_path, digits, value):
    lines = [HEADER, *rows(*digits)]
    fields = lines[5].split(",")
    fields[6] = value  # label is column 0, so this is pixel5
    lines[5] = ",".join(fields)
    assert_line_error(write_text(tmp_path / "nan.csv", lines), 6, "pixel5", "not an integer")


@pytest.mark.parametrize("value", ["256", "-1", "99999999999999999999999"])
def test_pixel_out_of_range(tmp_path, digits, value):
    lines = [HEADER, *rows(*digits)]
    fields = lines[2].split(",")
    fields[8] = value  # pixel7
    lines[2] = ",".join(fields)
    assert_line_error(write_text(tmp_path / "range.csv", lines), 3, f"pixel7 = {int(value)}", "0..255")


def test_a_loadtxt_that_only_warns_of_a_value_it_wraps_is_not_believed(tmp_path, digits, monkeypatch):
    """The dependency audit: before NumPy 2.3, loadtxt's uint8 column stored 256 as 0 with a
    DeprecationWarning, and the file was read without a word. A NumPy that warns is mimicked here."""
    import warnings

    def old_loadtxt(rows, **kwargs):
        warnings.warn("Parsing an integer via a float is deprecated", DeprecationWarning, stacklevel=2)
        return np.zeros((len(rows), 785), np.uint8)

    monkeypatch.setattr(kaggle_csv.np, "loadtxt", old_loadtxt)
    monkeypatch.setattr(kaggle_csv, "LOADTXT_WRAPS", True)
    lines = [HEADER, *rows(*digits)]
    fields = lines[2].split(",")
    fields[8] = "256"
    lines[2] = ",".join(fields)
    assert_line_error(write_text(tmp_path / "range.csv", lines), 3, "pixel7 = 256", "0..255")


def test_a_pixel_written_minus_zero_is_zero(tmp_path, digits):
    """The ensemble audit: "-0" passed the line check but not NumPy's parser: "lines 2 to 7 could not be parsed"."""
    lines = [HEADER, *rows(*digits)]
    fields = lines[2].split(",")
    fields[8], fields[9] = "-0", "+007"
    lines[2] = ",".join(fields)
    images, labels = read_kaggle_csv(write_text(tmp_path / "signs.csv", lines))
    expected = digits[0].copy()
    expected[1, 0, 7:9] = 0, 7
    assert np.array_equal(images, expected) and np.array_equal(labels, digits[1])


def test_a_file_of_black_and_white_pixels_is_refused(tmp_path, digits):
    """The ensemble audit: a test file binarised to 0/1 was read as 0..255, so every image was black and the
    submission said 5 for all 10,000."""
    images, labels = digits
    path = write_text(tmp_path / "bw.csv", [HEADER, *rows((images > 127).astype(np.uint8), labels)])
    told = r"bw.csv: every pixel is 0 or 1 .*multiply them by 255 \(pandas: .*index=False\)\)$"
    with pytest.raises(DataError, match=told):
        read_kaggle_csv(path)
    assert read_kaggle_csv(write_text(tmp_path / "black.csv", [HEADER, *rows(images * 0, labels)]))[0].max() == 0


@pytest.mark.parametrize("value", ["256", "-1", "1000"])
def test_label_out_of_range(tmp_path, digits, value):
    lines = [HEADER, *rows(*digits)]
    lines[4] = value + lines[4][lines[4].index(","):]
    assert_line_error(write_text(tmp_path / "label.csv", lines), 5, f"label {value}", "0..255")


def test_labels_above_9_are_more_classes_and_pixels_may_count_from_1(tmp_path, digits):
    """Kaggle's Sign Language MNIST: label,pixel1,...,pixel784 and 24 letters numbered 0..24."""
    images, labels = digits
    header = ",".join(["label"] + [f"pixel{i}" for i in range(1, 785)])
    path = write_text(tmp_path / "signs.csv", [header, *rows(images, labels + 15)])
    read_images, read_labels = read_kaggle_csv(path)
    assert np.array_equal(read_images, images) and np.array_equal(read_labels, labels + 15)


def test_first_problem_in_file_order_is_reported(tmp_path, digits):
    lines = [HEADER, *rows(*digits)]
    lines[2] = "312" + lines[2][lines[2].index(","):]  # a label problem on line 3 ...
    lines[5] = lines[5] + ",0"  # ... comes before a column problem on line 6
    assert_line_error(write_text(tmp_path / "two.csv", lines), 3, "label 312")


def test_bad_line_far_into_a_large_file(tmp_path):
    """The rescan skips whole chunks that parse; the line number must still be exact."""
    images = np.zeros((2500, 28, 28), np.uint8)
    lines = ["", HEADER, *rows(images, np.zeros(2500, np.uint8))]
    lines[1500] = ""  # a blank line in the middle does not shift the numbering
    lines[2345] = lines[2345][:-1] + "300"
    assert_line_error(write_text(tmp_path / "big.csv", lines), 2346, "pixel783 = 300")


def test_not_text(tmp_path):
    path = tmp_path / "binary.csv"
    path.write_bytes(b"\x89PNG\xff\xfe\x00label")
    with pytest.raises(DataError, match="not a text CSV"):
        read_kaggle_csv(path)
    for bom in (b"\xff\xfe", b"\xfe\xff"):  # Excel's "Unicode text" (the locale audit: "not a text CSV")
        path.write_bytes(bom + HEADER.encode("utf-16-le" if bom == b"\xff\xfe" else "utf-16-be"))
        with pytest.raises(DataError, match="saved as UTF-16: save it as UTF-8"):
            read_kaggle_csv(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_kaggle_csv(tmp_path / "train.csv")


def test_write_checks_its_inputs(tmp_path, digits):
    images, labels = digits
    with pytest.raises(ShapeError, match="28, 28"):
        write_kaggle_csv(tmp_path / "a.csv", images[:, :27])
    with pytest.raises(ShapeError, match="labels must have shape"):
        write_kaggle_csv(tmp_path / "a.csv", images, labels[:3])
    with pytest.raises(ShapeError, match="labels must be in 0..255"):
        write_kaggle_csv(tmp_path / "a.csv", images, labels.astype(np.int64) + 250)
    with pytest.raises(ShapeError, match="pixels must be integers"):
        write_kaggle_csv(tmp_path / "a.csv", images / 255)
    assert not list(tmp_path.iterdir())


def test_real_kaggle_file_equals_the_idx_files(shared_dir):
    folder = shared_dir / "datasets" / "mnist"
    images, labels = read_kaggle_csv(folder / "t10k-kaggle.csv.gz")
    np.testing.assert_array_equal(images, read_idx(folder / "t10k-images-idx3-ubyte.gz"))
    np.testing.assert_array_equal(labels, read_idx(folder / "t10k-labels-idx1-ubyte.gz"))


# --- other separators, line ends and the limits that keep a hostile file bounded --------------

def assert_one_short_line(path, *words):
    """read_kaggle_csv(path) fails with one line, naming the file, short whatever the file holds."""
    with pytest.raises(DataError) as info:
        read_kaggle_csv(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    assert len(message) < len(str(path)) + 300, f"{len(message)} characters: {message}"
    for word in words:
        assert word in message, message
    return message


@pytest.mark.parametrize("separator, name", [(";", "';'-separated"), ("\t", "tab-separated")])
@pytest.mark.parametrize("with_header", [True, False])
def test_another_separator_is_named_and_not_echoed_whole(tmp_path, digits, separator, name, with_header):
    """A ';' file once echoed its whole 7,000-character header."""
    lines = [line.replace(",", separator) for line in ([HEADER] if with_header else []) + rows(*digits)]
    message = assert_one_short_line(write_text(tmp_path / "excel.csv", lines), "line 1",
                                    f"looks like {name}", "scratchnn reads comma-separated")
    assert "..." in message


def test_another_separator_in_a_data_line_is_named(tmp_path, digits):
    lines = [HEADER, *rows(*digits)]
    lines[3] = lines[3].replace(",", ";")
    assert_line_error(write_text(tmp_path / "mixed.csv", lines), 4, "got 1", "looks like ';'-separated")


@pytest.mark.parametrize("newline", ["\r", "\r\n", "\n"])
def test_every_kind_of_line_end(tmp_path, digits, newline):
    """CR-only (classic Mac OS, Excel's 'CSV (Macintosh)') reads like LF and CRLF."""
    path = write_text(tmp_path / "mac.csv", [HEADER, *rows(*digits), ""], newline)
    x, y = read_kaggle_csv(path)
    np.testing.assert_array_equal(x, digits[0])
    np.testing.assert_array_equal(y, digits[1])


def test_line_numbers_count_cr_only_line_ends(tmp_path, digits):
    lines = [HEADER, *rows(*digits)]
    lines[4] = "312" + lines[4][lines[4].index(","):]
    assert_line_error(write_text(tmp_path / "mac.csv", lines, "\r"), 5, "label 312")


def test_a_long_value_is_cut_in_the_message(tmp_path, digits):
    lines = [HEADER, *rows(*digits)]
    lines[2] = lines[2].replace(",", ",x" * 5000 + ",", 1)
    assert_one_short_line(write_text(tmp_path / "long.csv", lines), "line 3")
    lines = [HEADER, *rows(*digits)]
    fields = lines[2].split(",")
    fields[1] = "y" * 20000
    message = assert_one_short_line(write_text(tmp_path / "long.csv", [HEADER, ",".join(fields)]), "line 2",
                                    "pixel0 = 'yyyy", "...' is not an integer")
    assert "y" * 100 not in message


def test_a_line_longer_than_the_limit_is_refused_unparsed(tmp_path, digits):
    padded = " , ".join(rows(*digits)[0].split(","))
    padded += " " * (kaggle_csv.CHARS_PER_VALUE * 785 - len(padded))  # spaces around values are fine
    x, _ = read_kaggle_csv(write_text(tmp_path / "wide.csv", [HEADER, padded]))
    np.testing.assert_array_equal(x[0], digits[0][0])
    path = write_text(tmp_path / "too-wide.csv", [HEADER, padded + " ", *rows(*digits)])
    assert_one_short_line(path, "line 2 is longer than 25,120 characters")


def test_a_line_of_a_hundred_megabytes_is_refused_after_reading_one_line(tmp_path):
    path = tmp_path / "one-line.csv.gz"
    path.write_bytes(gzip.compress(b"0," * (50 << 20), 1))
    assert_one_short_line(path, "line 1 holds more than 16,385 comma-separated values", "128x128")
    path.write_bytes(gzip.compress(b"0" * (50 << 20), 1))
    assert_one_short_line(path, "line 1 is longer than 524,320 characters")


def test_the_row_limit(tmp_path, digits, monkeypatch):
    path = write_kaggle_csv(tmp_path / "train.csv", *digits)
    monkeypatch.setattr(kaggle_csv, "MAX_ROWS", 5)
    assert_one_short_line(path, "more than 5 images (line 7)", "split the file")
    monkeypatch.setattr(kaggle_csv, "MAX_ROWS", 6)
    assert len(read_kaggle_csv(path)[0]) == 6


def test_the_blank_line_limit(tmp_path, digits, monkeypatch):
    monkeypatch.setattr(kaggle_csv, "MAX_BLANK_LINES", 3)
    path = write_text(tmp_path / "blank.csv", [HEADER, *rows(*digits), "", " ", "\t"])
    assert len(read_kaggle_csv(path)[0]) == 6
    write_text(path, ["", HEADER, *rows(*digits), "", " ", "\t"])
    assert_one_short_line(path, "more than 3 blank lines (line 11)")


def test_bytes_that_are_not_utf8_name_their_line(tmp_path, digits):
    path = tmp_path / "latin1.csv"
    path.write_bytes("\n".join([HEADER, *rows(*digits)[:2], "caf\xe9", *rows(*digits)[2:]]).encode("latin-1"))
    assert_one_short_line(path, "line 4: not a text CSV")


@pytest.mark.parametrize("column, value, words", [
    (0, "9" * 5000, ["label 99999", "... is outside 0..255"]),  # int() refuses 4,300+ digits
    (3, "-" + "0" * 5000 + "1", ["pixel2 = -0000", "... is outside 0..255"]),
    (3, "+" + "0" * 5000 + "7", None),  # a long way to write 7 is still 7
    (3, "21588", ["pixel2 = 21588 is outside 0..255; scale them to 0..255 (16-bit pixels of 0..65535: "
                  "pixel // 257)"]),  # the shapes audit: no fix was said
    (3, "-3", ["pixel2 = -3 is outside 0..255; pixels are light ink on a dark 0 and never negative: shift them"]),
])
def test_numbers_with_thousands_of_digits(tmp_path, digits, column, value, words):
    fields = rows(*digits)[0].split(",")
    fields[column] = value
    path = write_text(tmp_path / "digits.csv", [HEADER, ",".join(fields)])
    if words is None:
        assert read_kaggle_csv(path)[0][0, 0, 2] == 7
    else:
        assert_one_short_line(path, "line 2", *words)


# --- square images of other sides ------------------------------------------------------------

@pytest.mark.parametrize("side", [8, 16, 64])
def test_square_images_of_any_side_round_trip(tmp_path, side):
    rng = np.random.default_rng(side)
    images, labels = rng.integers(0, 256, (5, side, side), dtype=np.uint8), np.array([0, 25, 3, 3, 7], np.uint8)
    path = write_kaggle_csv(tmp_path / "train.csv", images, labels)
    assert path.read_text().splitlines()[0].endswith(f",pixel{side * side - 1}")
    x, y = read_kaggle_csv(path)
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)
    names = [f"pixel{i}" for i in range(side * side)]
    last = write_text(tmp_path / "last.csv", [",".join([*names, "Label"]),  # the label in the last column
                                              *(f"{row},{label}" for row, label in zip(rows(images), labels))])
    x, y = read_kaggle_csv(last)
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)
    unlabelled = write_text(tmp_path / "test.csv", [",".join(names), *rows(images)])
    x, y = read_kaggle_csv(unlabelled)
    np.testing.assert_array_equal(x, images)
    assert y is None


@pytest.mark.parametrize("labels", [True, False])
def test_without_a_header_another_side_asks_for_one(tmp_path, labels):
    """Without a header only Kaggle's layout is known (a label, then 28x28); scikit-learn's 8x8
    digits file puts its label last, and reading its first pixel as the label would train on
    nonsense, so a row of another length is refused with the header to add."""
    images = np.zeros((2, 8, 8), np.uint8)
    path = write_text(tmp_path / "plain.csv", rows(images, np.array([1, 2]) if labels else None))
    assert_line_error(path, 1, f"{64 + labels} integers and no header", "For 8x8 images add a header line",
                      "'label,pixel0,...,pixel63' (or with label last)")


def test_the_mnist_in_csv_header_names_pixels_by_row_and_column(tmp_path, digits):
    header = "label," + ",".join(f"{row}x{column}" for row in range(1, 29) for column in range(1, 29))
    x, y = read_kaggle_csv(write_text(tmp_path / "mnist_train.csv", [header, *rows(*digits)]))
    np.testing.assert_array_equal(x, digits[0])
    np.testing.assert_array_equal(y, digits[1])
    swapped = header.replace("1x2,", "@").replace("1x1,", "1x2,").replace("@", "1x1,")  # columns out of order
    assert_line_error(write_text(tmp_path / "swapped.csv", [swapped, *rows(*digits)]), 1, "header must be")


def test_a_header_counted_from_1_gives_the_side_too(tmp_path):
    images = np.arange(2 * 64, dtype=np.uint8).reshape(2, 8, 8)
    header = "label," + ",".join(f"pixel{i}" for i in range(1, 65))
    x, y = read_kaggle_csv(write_text(tmp_path / "from1.csv", [header, *rows(images, np.array([1, 2]))]))
    np.testing.assert_array_equal(x, images)


@pytest.mark.parametrize("header, columns, last", [
    ("label," + ",".join(f"pixel{i}" for i in range(50)), 51, 783),  # 50 pixels: not a square
    ("label," + ",".join(f"pixel{i}" for i in range(49)), 50, 783),  # 7x7: smaller than the smallest side
    (",".join(["7"] * 50), 50, 783),  # a header-less line of 50 integers
    ("label," + ",".join(f"pixel{i}" for i in range(2, 66)), 65, 63),  # counted from 2: the 8x8 header is named
])
def test_a_row_that_is_no_square_image_is_refused(tmp_path, header, columns, last):
    assert_line_error(write_text(tmp_path / "odd.csv", [header, "1," + ",".join(["0"] * (columns - 1))]), 1,
                      f"header must be 'label,pixel0,...,pixel{last}'", "any square side from 8 to 128",
                      f"({columns} columns)")


@pytest.mark.parametrize("first, cells, fix", [
    ("class", ["3"] + ["0"] * 64, "name the label column 'label' (here 'class') and put it first or last"),
    ("label", ["3"] + ["0.5"] * 64, "pixels are integers 0..255: scale 0..1 values by 255 and round them"),
    ("label", ["dog"] + ["0"] * 64, "number the classes 0, 1, 2... in the file and give their names with "
                                    "--class-names"),
    ("label", ['"3"'] + ['"0"'] * 64, "save the file without quotes around numbers"),
])
def test_a_file_of_ones_own_is_told_what_to_change(tmp_path, first, cells, fix):
    """The own-dataset audit: these were refused naming no fix (and the header error cited pixel783)."""
    header = ",".join([first] + [f"pixel{i}" for i in range(64)])
    with pytest.raises(DataError, match=re.escape(fix)):
        read_kaggle_csv(write_text(tmp_path / "own.csv", [header, ",".join(cells)]))


def test_the_side_of_the_header_holds_for_every_line(tmp_path, digits):
    images = digits[0][:, :8, :8]
    lines = [",".join(["label"] + [f"pixel{i}" for i in range(64)]), *rows(images, digits[1])]
    lines[3] = rows(*digits)[2]  # a 28x28 row in an 8x8 file
    assert_line_error(write_text(tmp_path / "mixed.csv", lines), 4,
                      "holds more than 65 comma-separated values, the width of this file's rows")
    lines[3] = lines[3][:40]  # a short row
    assert_line_error(write_text(tmp_path / "mixed.csv", lines), 4,
                      "expected 65 comma-separated values (label + 64 pixels), got")


def test_the_line_limit_follows_the_side(tmp_path, digits):
    images = digits[0][:, :8, :8]
    lines = [",".join(["label"] + [f"pixel{i}" for i in range(64)]), *rows(images, digits[1])]
    lines[2] += " " * (kaggle_csv.CHARS_PER_VALUE * 65)  # 2,080 characters fit a row of 8x8 values and a label
    assert_line_error(write_text(tmp_path / "wide.csv", lines), 3, "longer than 2,080 characters")
    first = ",".join(["7"] * 784) + " " * 30_000  # the first line may be as long as a row of the largest side
    assert len(read_kaggle_csv(write_text(tmp_path / "first.csv", [first]))[0]) == 1


def test_the_row_limit_follows_the_side(tmp_path, digits, monkeypatch):
    monkeypatch.setattr(kaggle_csv, "MAX_VALUES", 65 * 4)
    path = write_kaggle_csv(tmp_path / "small.csv", digits[0][:, :8, :8], digits[1])
    assert_one_short_line(path, "more than 4 images (line 6)", "one CSV of 8x8 images")


@pytest.mark.parametrize("shape", [(2, 28, 27), (2, 50), (2, 7, 7), (2, 129, 129), (2, 4, 4, 4)])
def test_only_square_images_of_a_readable_side_are_written(tmp_path, shape):
    with pytest.raises(ShapeError, match="must be square"):
        write_kaggle_csv(tmp_path / "x.csv", np.zeros(shape, np.uint8))
    assert not list(tmp_path.iterdir())


def test_a_submission_writes_class_numbers_past_9(tmp_path):
    path = kaggle_write.write_submission(tmp_path / "submission.csv", np.array([25, 0, 11]))
    assert path.read_text() == "ImageId,Label\n1,25\n2,0\n3,11\n"
