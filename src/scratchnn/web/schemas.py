"""The JSON the API takes and gives, as pydantic models (so the OpenAPI schema documents it)."""
from __future__ import annotations

import json
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

MIN_SIDE, MAX_SIDE = 28, 280

# NOTE: strict, so "0.5" (a string) is refused instead of quietly parsed; ge/le and
# allow_inf_nan refuse NaN, infinities and values outside 0..1.
Pixel = Annotated[float, Field(strict=True, ge=0.0, le=1.0, allow_inf_nan=False)]
Row = Annotated[list[Pixel], Field(min_length=MIN_SIDE, max_length=MAX_SIDE)]


class CanvasRequest(BaseModel):
    """A drawn canvas: grey values 0..1 with light ink on a dark background (1 = ink), as MNIST.

    ``pixels`` is (H, W) with 28 <= H, W <= 280, e.g. the canvas downsampled to 112x112 in the
    browser; it goes through the MNIST-style preprocessing (crop, fit in 20x20, centre of mass
    in a 28x28 frame). With ``preprocess: false`` the pixels must already be a 28x28 MNIST-style
    image (a gallery digit) and are fed as they are.
    """

    # The example is a valid request: a vertical stroke (a "1") 16 rows tall, which the preprocessing
    # accepts as a digit; a shorter blob would be refused as no ink.
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"pixels": [[0.0] * 28] * 6 + [[0.0] * 13 + [1.0, 1.0] + [0.0] * 13] * 16 + [[0.0] * 28] * 6}]})

    pixels: Annotated[list[Row], Field(min_length=MIN_SIDE, max_length=MAX_SIDE)]
    preprocess: Annotated[bool, Field(strict=True)] = True  # strict: "yes" or 1 is refused, not guessed

    @model_validator(mode="after")
    def _rectangular(self) -> CanvasRequest:
        width = len(self.pixels[0])
        for y, row in enumerate(self.pixels):
            if len(row) != width:
                raise ValueError(f"pixels must be a rectangle: row {y} has {len(row)} values, row 0 has {width}")
        if not self.preprocess and (len(self.pixels), width) != (28, 28):
            raise ValueError(f"with preprocess false the pixels must be 28x28, got {len(self.pixels)}x{width}")
        return self


class LayerActivation(BaseModel):
    """One hidden activation layer's output for the image: ``values`` (D,) for a dense layer,
    ``maps`` (C', H', W') for a convolutional one (at most 16 maps, pooled to at most 14x14)."""

    index: int = Field(description="position of the layer in the model")
    name: str = Field(description="the layer type, e.g. ReLU")
    shape: list[int] = Field(description="the full output shape of one sample, e.g. [256] or [8, 28, 28]")
    values: list[float] | None = None
    maps: list[list[list[float]]] | None = None


class PredictResponse(BaseModel):
    prediction: int = Field(description="index of the most probable class")
    label: str = Field(description="its name, e.g. '7'")
    probabilities: list[float] = Field(description="softmax output (C,), summing to 1")
    input: list[list[float]] = Field(description="the 28x28 image the network received, 0..1, light ink")
    activations: list[LayerActivation]
    members: int = Field(1, description="models whose probabilities were averaged (an ensemble when > 1)")
    activations_from: str = Field("", description="the run whose layers 'activations' shows: the first member "
                                                  "of an ensemble")
    tta: int = Field(1, description="views of the image whose probabilities were averaged (test-time augmentation "
                                    "when > 1; the activations are the image's own)")
    milliseconds: float = Field(description="server time for preprocessing and the forward pass")
    digits_seen: int = Field(1, description="for a photo: how many digits its ink falls apart into, left to right "
                                            "(as scratchnn predict reads a number); the fields above read all the ink "
                                            "as one digit")
    number: str = Field("", description="for a photo of more than one digit: each digit's label, left to right, "
                                        "read one by one (the first 20; joined with spaces when a label is "
                                        "longer than one character)")
    number_probabilities: list[float] = Field(default_factory=list,
                                              description="the probability of each of the number's digits")
    model: str = Field("", description="the served model that answered (GET /api/model's name); it changes "
                                       "when a run trained from the page ends or one is loaded from Runs")


class LayerInfo(BaseModel):
    index: int
    type: str
    description: str
    output_shape: list[int]
    parameters: int


class ModelSummary(BaseModel):
    name: str = Field(description="the run folder's name")
    path: str = Field(description="the model file's name (in its run folder)")
    input_shape: list[int]
    num_parameters: int
    classes: list[str]
    architecture: str = Field(description="layer widths, e.g. '784 -> 256 -> 128 -> 10'")
    summary: str = Field(description="the text table of model.summary()")
    layers: list[LayerInfo]
    metrics: dict = Field(description="final metrics saved with the model (accuracies, losses, time)")
    config: dict = Field(description="the training config (data files by their base name)")
    created: str
    gallery_sets: list[str] = Field(description="the sets /api/gallery can show: dev, and test for a named dataset")
    members: list[str] = Field(default_factory=list,
                               description="the runs of an ensemble, first the one this summary, the layer views and "
                                           "the gallery's data describe; one name for a single model")
    tta: int = Field(1, description="views of each image averaged by /api/predict and the gallery "
                                    "(test-time augmentation when > 1; serve --tta N)")


class GalleryItem(BaseModel):
    index: int = Field(description="position in the set")
    label: int
    prediction: int
    confidence: float = Field(description="probability the model gave its (wrong) prediction")
    pixels: list[list[int]] = Field(description="the 28x28 image, 0..255, light ink")


class Gallery(BaseModel):
    set: Literal["dev", "test"]
    description: str
    size: int = Field(description="images in the set")
    mistakes: int = Field(description="how many of them the model gets wrong")
    seed: int = Field(description="the seed that picked these items; pass it again for the same ones")
    items: list[GalleryItem]


class ErrorMessage(BaseModel):
    detail: str = Field(description="one line: what is wrong and what to do")


def one_line(error: ValidationError | list[dict], prefix: str = "") -> str:
    """A pydantic error list as one readable line: the first problem and how many more, and for
    the pixels what they take (the advice audit: [1, 2] was "a valid array" only).

    >>> one_line([{"loc": ("body", "pixels", 0, 3), "msg": "Input should be a valid number"},
    ...           {"loc": ("body", "pixels", 0, 4), "msg": "Input should be a valid number"}]).split("; ")[0]
    'pixels[0][3]: Input should be a valid number (and 1 more problem)'

    A field name the client made up is quoted as JSON, shortened, so it cannot break the line:

    >>> one_line([{"loc": ("body", "pix\\nels"), "msg": "Extra inputs are not permitted"}])
    '["pix\\\\nels"]: Extra inputs are not permitted'
    """
    errors = error.errors() if isinstance(error, ValidationError) else list(error)
    if not errors:
        return "invalid request"
    # NOTE: an unknown field first: {"image": ...} is a misnamed "pixels", the missing one follows from it
    errors.sort(key=lambda e: e.get("type") != "extra_forbidden")
    first = errors[0]
    where = "".join(_location_part(part) for part in first.get("loc", ()))
    where = where.lstrip(".").removeprefix("body.").removeprefix("body")
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    text = f"{prefix}{where}: {message}" if where else f"{prefix}{message}"
    more = len(errors) - 1
    text += f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    if where.startswith("pixels") and "rectangle" not in message and "28x28" not in message:  # what it takes
        text += f"; pixels is a list of rows of numbers 0..1 (ink 1), {MIN_SIDE}x{MIN_SIDE} to {MAX_SIDE}x{MAX_SIDE}"
    return CONTROL.sub(lambda match: json.dumps(match.group())[1:-1], text)  # a line break in a message too


CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")  # what could end or garble a line of text
MAX_NAME = 40  # characters of a client's field name repeated in an error


def _location_part(part) -> str:
    """``[3]`` for an index, ``.pixels`` for a name, ``["odd name"]`` (JSON, shortened) for any other."""
    if isinstance(part, int):
        return f"[{part}]"
    name = str(part)
    if name.isidentifier() and len(name) <= MAX_NAME:
        return f".{name}"
    return f"[{json.dumps(name[:MAX_NAME] + ('...' if len(name) > MAX_NAME else ''))}]"
