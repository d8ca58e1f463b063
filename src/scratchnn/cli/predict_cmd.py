"""``scratchnn predict``: one image of a data set (the seed's test_prediction), your own photos, or
a Kaggle submission.

    scratchnn predict MODEL... --index N [--set dev] [--save FILE.png]
    scratchnn predict MODEL... photo.jpg [more ...] [--digits auto|single|multi] [--ink auto|dark|light]
                                         [--explain-preprocessing OUT.png]
    scratchnn predict MODEL... --csv test.csv --submission submission.csv [--ignore-labels]

``--json`` prints the predictions of photos or of ``--index N`` as one JSON object, for scripts.

Several models (or a folder of member runs) answer as an ensemble; ``--tta N`` averages over N
views of each image. The leading arguments that are run folders or ``.safetensors`` files are
the models (the first always is one), the rest are photos.

A photo is read and turned into the 28x28 input MNIST-style (scratchnn.photos.preprocess); a bad file gets
one line on stderr, the others are still read, and the exit code is 1 at the end.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import sys
import textwrap
from pathlib import Path

import numpy as np

from ..data import read_kaggle_test_csv, scale_pixels, write_submission
from ..data.load import DIGITS as DIGIT_NAMES
from ..ensemble import average, turned_differently
from ..errors import ConfigError, ImageError, one_line, readable
from ..training.run_data import check_image_shape, not_28x28
from .common import (add_data_arguments, add_set_argument, add_textbook_argument, add_tta_argument,
                     load_ensemble_and_set, load_models, member_probas, refuse_data_flags_for_photos,
                     require_plots)
from .terminal_image import render_image

DIGITS = ("auto", "single", "multi")


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "predict", help="predict the digit in photos, in one image of a data set, or write a Kaggle submission",
        description="With image files: read each photo (PNG, JPEG, BMP, GIF, WebP...), prepare it the "
                    "way MNIST was made (flatten the lighting, find the ink, crop, fit 20x20, centre in "
                    "28x28) and print the prediction with the top 3 probabilities; a written number "
                    "(or, for a model of letters, a word) is split into its characters. With --index: draw "
                    "one image of the data set with the predicted and the true label (the seed's "
                    "test_prediction). With --csv TEST.csv --submission OUT.csv: Kaggle's Digit Recognizer "
                    "submission for every image of the test file. Several models answer as an ensemble; "
                    "--tta N averages over N views of each image.")
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="MODEL... [IMAGE...]: one or more models (model files or run folders; several make an "
                             "ensemble that averages their probabilities), then the photos or scans to read "
                             "(a pattern such as 'photos/*.jpg' is expanded here too, as Windows' shells do not)")
    parser.add_argument("--digits", choices=DIGITS, default="auto",
                        help="single: all the ink is one digit (one character); multi: a number (or a word), read "
                             "character by character, left to right; auto: several when the ink falls apart into "
                             "several pieces, for a model of characters; single for one of classes named by words "
                             "(default)")
    parser.add_argument("--ink", choices=("auto", "dark", "light"), default="auto",
                        help="dark ink on light paper, light on dark, or auto-detect (default)")
    parser.add_argument("--explain-preprocessing", metavar="OUT.png", type=Path,
                        help="save a figure of every preprocessing step (with several photos: OUT-<photo>.png)")
    parser.add_argument("--folder-labels", action="store_true",
                        help="each photo's folder names what it shows (mine/7/a.jpg is a 7, mine/42/b.jpg the number "
                             "42): after the answers, how many the model read right and which not")
    parser.add_argument("--index", type=int, metavar="N", help="instead of photos: image N of the set (from 0)")
    add_set_argument(parser, default=None)  # given or not: it does nothing for photos or a submission
    parser.add_argument("--save", metavar="FILE.png", type=Path, help="with --index: also save it as an image")
    add_tta_argument(parser)
    add_textbook_argument(parser)
    parser.add_argument("--submission", metavar="OUT.csv", type=Path,
                        help="predict every image of --csv TEST.csv (Kaggle's label-less pixel0..pixel783 file) "
                             "and write Kaggle's ImageId,Label submission file")
    parser.add_argument("--ignore-labels", action="store_true",
                        help="with --submission: accept a CSV that has a label column, and ignore it")
    parser.add_argument("--json", action="store_true",
                        help="print the predictions as one JSON object instead (for scripts): for each photo what it "
                             "reads and each character's probabilities, or the --index image's (notes go to stderr)")
    add_data_arguments(parser, "with --index; with --submission, --csv is the test file; "
                               "default: the data the model was trained on")
    parser.set_defaults(run=run)


def split_models(paths: list[str]) -> tuple[list[str], list[Path]]:
    """(models, photos): the first path and those right after it that are folders or .safetensors
    files are models; the rest are photos."""
    count = 1
    while count < len(paths) and (Path(paths[count]).is_dir() or paths[count].endswith(".safetensors")):
        count += 1
    return paths[:count], [photo for path in paths[count:] for photo in _matches(path)]


def _matches(path: str) -> list[Path]:
    """``path``, or the files a pattern such as photos/*.jpg names, sorted: the shell expands
    patterns on Linux and macOS, but Windows' cmd and PowerShell pass them on as typed, and a
    quoted pattern ('photos/*.jpg') is passed as typed everywhere ("no such file")."""
    if Path(path).exists() or not any(char in path for char in "*?["):
        return [Path(path)]
    found = sorted(Path(match) for match in glob.glob(os.path.expanduser(path), recursive=True)
                   if Path(match).is_file())  # 'photos/*' names its subfolders too
    if not found:
        raise ConfigError(f"{path}: no such file, and no file matches it as a pattern; give image files, or a "
                          "pattern that names some")
    return found


def run(args: argparse.Namespace) -> int:
    args.models, args.photos = split_models(args.paths)
    from ..photos.preprocess import photo_suffixes  # Pillow: only when a command runs

    first = Path(args.models[0])
    if first.suffix.lower() in photo_suffixes() and first.is_file():  # the photo typed before the model
        raise ConfigError(f"{first} is an image, not a model: give the model first, then the images "
                          f"(scratchnn predict MODEL {first.name})")
    if args.set is not None and (args.submission is not None or args.photos):
        what = "a submission predicts every image of --csv" if args.submission is not None else "photos are not in it"
        raise ConfigError(f"--set picks the set of --index N, and {what}: leave --set out")
    args.set = args.set or "dev"
    if args.submission is not None:
        if args.json:
            raise ConfigError("--json prints the predictions of photos or of --index N; a submission is its CSV file")
        return write_kaggle_submission(args)
    if args.ignore_labels:
        raise ConfigError("--ignore-labels goes with --submission (a test CSV that has a label column)")
    if args.index is not None and args.photos:
        raise ConfigError("give image files to read or --index N for an image of the data set, not both")
    if args.index is None and not args.photos:
        raise ConfigError("nothing to predict: give image files after the model (a folder there is read as another "
                          "model, so give its images: photos/*.png), or --index N for an image of the data set")
    if args.folder_labels and not args.photos:
        raise ConfigError("--folder-labels scores photos against their folders: give photos (mine/*/*.jpg)")
    if args.photos and args.save:
        raise ConfigError("--save goes with --index; for photos, --explain-preprocessing OUT.png saves the steps")
    if args.index is not None and args.explain_preprocessing:  # it drew nothing, without a word (the fuzz audit)
        raise ConfigError("--explain-preprocessing goes with photos (a data set's image needs no preprocessing); "
                          "with --index, --save OUT.png saves the image")
    if args.save or args.explain_preprocessing:
        require_plots(args.save, args.explain_preprocessing)  # before anything is printed: the answer, then
        # "needs matplotlib" (or "cannot draw .xyz files"), read as a failure
    if args.photos:
        refuse_data_flags_for_photos(args, "photos")
        return predict_photos(load_models(args), args)
    ensemble, images, labels, classes, description = load_ensemble_and_set(args)
    if not 0 <= args.index < len(images):
        raise ConfigError(f"--index {args.index} is out of range: the {args.set} set has "
                          f"{len(images):,} images (0..{len(images) - 1})")
    image, label = images[args.index], int(labels[args.index])
    probs = ensemble.predict_proba(scale_pixels(image[None], ensemble.input_shape), tta=args.tta)[0]
    best = int(np.argmax(probs))
    if args.json:
        print(json.dumps({**answered_by_json(ensemble, args.tta), "data": description, "set": args.set,
                          "index": args.index, "true": classes[label], "correct": best == label,
                          **character(probs, classes)}, indent=2))
    else:
        print_index_image(args, image, label, probs, classes, description, ensemble)
    if args.save:
        from ..plots import prediction_figure, save_figure

        save_figure(prediction_figure(image, probs, classes, label), args.save)
        print(f"Saved {args.save}", file=sys.stderr if args.json else sys.stdout)
    return 0


def print_index_image(args, image, label: int, probs, classes, description: str, ensemble) -> None:
    """The --index image in the terminal, with the prediction, the true label and the top 3."""
    best = int(np.argmax(probs))
    print(f"Image {args.index} of the {description}{in_brackets(answered_by(ensemble, args.tta))}:")
    print(render_image(image))
    verdict = "correct" if best == label else "wrong"
    print(f"Prediction: {classes[best]} (probability {probs[best]:.1%})   True label: {classes[label]}   ({verdict})")
    print("Top 3: " + top3(probs, classes))


def answered_by(ensemble, tta: int) -> str:
    """'ensemble of 3 models, TTA x4', or '' for one model without TTA."""
    parts = ([f"ensemble of {len(ensemble)} models"] if len(ensemble) > 1 else []) + ([f"TTA x{tta}"] if tta > 1 else [])
    return ", ".join(parts)


def answered_by_json(ensemble, tta: int) -> dict:
    """Who answered, for --json: the models' names and the TTA views."""
    return {"models": [member.name for member in ensemble.members], "tta": tta}


def character(probs: np.ndarray, classes) -> dict:
    """One image's answer, for --json: the predicted class, its probability, and every class's."""
    best = int(np.argmax(probs))
    return {"prediction": classes[best], "probability": float(probs[best]),
            "probabilities": {name: float(p) for name, p in zip(classes, probs)}}


def in_brackets(text: str) -> str:
    return f" ({text})" if text else ""


def write_kaggle_submission(args: argparse.Namespace) -> int:
    """Predict every image of the label-less ``--csv`` and write ``--submission`` (ImageId,Label)."""
    if args.photos or args.index is not None or args.save or args.folder_labels:
        raise ConfigError("--submission predicts the images of --csv TEST.csv: give no photos, --index, --save or "
                          "--folder-labels with it")
    if not args.csv or args.dataset or args.images or args.labels or args.class_names or args.transpose:
        raise ConfigError("--submission needs --csv TEST.csv (Kaggle's label-less pixel0..pixel783 file) "
                          "and no other data flag")
    target, source = Path(args.submission), Path(args.csv)
    if target.is_dir():
        raise ConfigError(f"--submission {target} is a folder; give a file name such as submission.csv")
    folder = target.absolute().parent
    if not folder.exists() and not any(up.is_file() for up in folder.parents):  # a typo must not make folders
        raise ConfigError(f"--submission {target}: the folder {target.parent} does not exist; create it first, or "
                          "write the file elsewhere")
    if target.exists() and source.exists() and target.samefile(source):
        raise ConfigError(f"--submission {target} is the test file itself; write the submission to another file")
    ensemble = load_models(args)  # any classes: Label is the class number, as the training file numbered it
    images = read_kaggle_test_csv(source, ignore_labels=args.ignore_labels)
    first = ensemble.members[0]
    if why := turned_differently(ensemble.members):
        raise ConfigError(f"{why}; make the submission with members trained alike")
    if first.transposed:  # the test file is laid out as the training file was: turned as training turned it
        images = np.ascontiguousarray(images.transpose(0, 2, 1))
    check_image_shape(images, str(source), first.model, first.metadata)
    predictions = average(member_probas(ensemble, images, args.tta)).argmax(axis=1)
    write_submission(target, predictions)
    counts = np.bincount(predictions, minlength=len(ensemble.classes))
    print(f"Wrote {target}: {len(predictions):,} predictions for {source}{in_brackets(answered_by(ensemble, args.tta))}")
    named = ensemble.classes != [str(label) for label in range(len(ensemble.classes))]  # say what a number is
    print("Labels predicted: " + ", ".join(f"{label}{f' ({name})' if named else ''}: {count:,}"
                                           for label, (name, count) in enumerate(zip(ensemble.classes, counts))))
    return 0


def predict_photos(ensemble, args: argparse.Namespace) -> int:
    """Predict every photo in ``args.photos`` with the model or ensemble; 1 if any could not be read, else 0."""
    from ..photos.folder_labels import FolderScore, folder_label
    from ..photos.preprocess import WORK_SIDE, read_image, split_digits, to_mnist

    if reads := not_28x28(ensemble.image_shape, ensemble.input_shape):  # a photo squeezed into 16x49 is noise
        raise ConfigError(f"this model reads {reads}; photos become 28x28 digits, so give a model trained on "
                          "28x28 images")
    classes = ensemble.classes
    # a photo of a class named by a word (a trouser) is one thing, whatever pieces its ink falls into
    split = args.digits if args.digits != "auto" or all(len(name) == 1 for name in classes) else "single"
    if not args.json and (len(ensemble) > 1 or args.tta > 1):
        print(f"Answered by an {answered_by(ensemble, args.tta)}\n" if len(ensemble) > 1 else
              f"Answered with {answered_by(ensemble, args.tta)}\n")
    answers, failed = [], 0
    score = FolderScore(tuple(classes)) if args.folder_labels else None
    for n, path in enumerate(args.photos):
        gray = None
        # a photo in a folder of one class (mine/7/) is one character: a stroke's gap split it into two
        one = score is not None and split == "auto" and folder_label(path, classes) in classes
        try:
            gray = read_image(path, reduce_to=WORK_SIDE)
            try:
                digits = ([to_mnist(gray, ink=args.ink)] if split == "single" or one
                          else split_digits(gray, ink=args.ink))
            except ImageError as error:
                raise ImageError(f"{path}: {error}") from None
        except ImageError as error:
            print(f"scratchnn predict: error: {one_line(error)}", file=sys.stderr)
            answers.append({"path": readable(str(path)), "error": readable(str(error))})
            failed += 1
            if score is not None:  # not read: read wrong
                score.add(path, None)
            if args.explain_preprocessing and gray is not None:  # how far it got: what stood out, or nothing
                explain_photo(args, n, gray, multi=split == "multi", refused=True)
            continue
        probs = ensemble.predict_proba(np.stack(digits).reshape(len(digits), *ensemble.input_shape), tta=args.tta)
        reads = "".join(classes[k] for k in probs.argmax(axis=1))
        expected = score.add(path, reads) if score is not None else None
        if args.json:
            answers.append({"path": readable(str(path)), "reads": reads,
                            "characters": [character(p, classes) for p in probs]})
        elif score is not None:  # a line a photo: a learner scores tens of them at once
            verdict = ("" if expected is None else ": right" if reads == expected
                       else f": wrong, its folder says {expected}")
            print(f"{one_line(path)}: reads {reads} ({' '.join(f'{p.max():.0%}' for p in probs)}){verdict}")
        else:
            if n:
                print()
            print_photo(path, digits, probs, classes, number=split == "multi" or len(digits) > 1)
        if args.explain_preprocessing and not explain_photo(args, n, gray, multi=split == "multi" or len(digits) > 1):
            failed += 1
    if args.json:
        scored = {"folder_labels": score.to_dict()} if score is not None else {}
        print(json.dumps({**answered_by_json(ensemble, args.tta), "photos": answers, **scored}, indent=2))
    elif score is not None:
        print("\n" + "\n".join(score.lines()))
        if split == "auto" and any(expected in classes for _, expected, _ in score.counted):
            print("  (a photo in a folder of one class is read as one character; --digits multi splits it)")
    return 1 if failed else 0


def explain_photo(args: argparse.Namespace, n: int, gray: np.ndarray, multi: bool, refused: bool = False) -> bool:
    """Save the preprocessing figure of photo ``n`` (``--explain-preprocessing``): every step, or
    for a photo the pipeline ``refused``, the steps as far as they went, under the reason. False
    when the figure could not be written (said on stderr)."""
    from ..photos.preprocess import preprocess_steps, steps_before_failure
    from ..plots.preprocessing import save_preprocessing_figure

    path, out = args.photos[n], args.explain_preprocessing
    if len(args.photos) > 1:  # one figure per photo; two photos named alike get their position too
        # alike as Windows and macOS compare names: Digit.png and digit.jpg would share one figure
        stems = [Path(photo).stem.casefold() for photo in args.photos]
        stem = Path(path).stem if stems.count(stems[n]) == 1 else f"{Path(path).stem}-{n + 1}"
        out = out.with_name(f"{out.stem}-{stem}{out.suffix or '.png'}")
    steps, problem = steps_before_failure(gray, ink=args.ink) if refused else (
        preprocess_steps(gray, ink=args.ink, multi=multi), "")
    title = f"{path}: stopped here: {textwrap.shorten(problem, 110)}" if problem else str(path)
    try:
        saved = save_preprocessing_figure(steps, out, title=title)
    except ConfigError as error:  # an unwritable folder, an unknown image suffix
        print(f"scratchnn predict: error: {error}", file=sys.stderr)
        return False
    print(f"Saved the preprocessing steps to {saved}", file=sys.stderr if args.json else sys.stdout)
    return True


def print_photo(path, digits: list[np.ndarray], probs: np.ndarray, classes, number: bool) -> None:
    """One photo's answer in the terminal: a number's characters side by side, or the one digit."""
    if number:
        print_number(path, digits, probs, classes)
        return
    print(f"{one_line(path)} (the 28x28 image the model sees):")
    print(render_image(to_pixels(digits[0])))
    best = int(np.argmax(probs[0]))
    print(f"Prediction: {classes[best]} (probability {probs[0, best]:.1%})")
    print("Top 3: " + top3(probs[0], classes))


def print_number(path, digits: list[np.ndarray], probs: np.ndarray, classes) -> None:
    """The digits (28, 28) side by side as far as the terminal is wide, then the number they read
    (for a model of other classes, letters say, the characters and the word they read)."""
    noun, reading = ("digit", "Number") if list(classes) == list(DIGIT_NAMES) else ("character", "Reads")
    print(f"{one_line(path)}: {len(digits)} {noun}{'s' * (len(digits) != 1)}, as the model sees them:")
    per_row = max(1, (shutil.get_terminal_size((80, 24)).columns + 2) // (2 * 28 + 2))
    for start in range(0, len(digits), per_row):
        blocks = [render_image(to_pixels(d)).splitlines() for d in digits[start:start + per_row]]
        for lines in zip(*[block + [""] * (28 - len(block)) for block in blocks]):
            print("  ".join(line.ljust(2 * 28) for line in lines).rstrip())
    best = probs.argmax(1)
    print(f"{reading}: " + "".join(classes[k] for k in best))
    for k, (p, b) in enumerate(zip(probs, best)):
        print(f"  {noun} {k + 1}: {classes[b]} ({p[b]:.1%})   top 3: {top3(p, classes)}")


def top3(probs: np.ndarray, classes) -> str:
    return ", ".join(f"{classes[i]} {probs[i]:.1%}" for i in np.argsort(probs)[::-1][:3])


def to_pixels(image: np.ndarray) -> np.ndarray:
    """float (28, 28) in 0..1 -> uint8 0..255 for the terminal."""
    return np.round(image * 255).astype(np.uint8)
