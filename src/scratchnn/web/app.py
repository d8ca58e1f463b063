"""The FastAPI app behind ``scratchnn serve``: the page, and a small JSON API it draws from.

    GET  /              the page (static HTML/CSS/JS from web/static, no CDN, works offline)
    POST /api/predict   a drawn canvas (JSON) or a photo (multipart) -> probabilities, the 28x28
                        input the network received and every hidden layer's activations
    GET  /api/model     layers, parameters, metrics and training config
    GET  /api/gallery   random dev/test digits the model gets wrong

Every error is a 4xx with ``{"detail": "one line"}``: a Host that is not one of the server's
names 400 (DNS rebinding), bodies over 5 MB 413 before they are read, bodies that take over 30 s
408, wrong shapes / non-numbers / non-images / empty canvases 422, unknown media types 415, a
gallery set whose data the server may not or cannot read 409.
"""
from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterable
from contextlib import asynccontextmanager
from importlib.resources import files
from pathlib import Path

import numpy as np
from anyio import CapacityLimiter, to_thread
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..data import DataSource
from ..errors import ImageError, ScratchnnError
from ..photos.preprocess import INKS, WORK_SIDE, NoInk, read_image, to_mnist, to_mnist_and_digits
from .gallery import GalleryUnavailable
from .hosts import HostAllowList, SameSiteWrites, allowed_host_names
from .inference import ModelService
from .limits import MAX_BODY_BYTES, BodySizeLimit
from .operator_log import OPERATOR
from .schemas import CanvasRequest, ErrorMessage, Gallery, ModelSummary, PredictResponse, one_line
from .train_api import TRAIN_ERRORS
from .train_setup import TrainSetup, add_training

STATIC_DIR = Path(str(files("scratchnn.web") / "static"))
UPLOAD_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")
UPLOAD_MAX_PIXELS = 16_000_000  # a 12-megapixel phone photo passes
DECODERS = 2  # uploads decoded at the same time: a burst of big photos cannot take all memory
# requests prepared and predicted at the same time: the model's lock takes them one by one anyway,
# and every thread the work ran on keeps its own C memory pool (50 at once grew a server by 160 MB)
PREDICTORS = 2
CANVAS_SHAPE = '; send a JSON object {"pixels": [[...], ...]}: rows of grey values 0..1, 28 to 280 a side'
MAX_DIGITS = 20  # digits of a photographed number read one by one; the rest are counted, not read
FILLED = 0.8  # a canvas more than this share ink was filled, not drawn on (a digit's strokes cover well under half)
_decoding = threading.BoundedSemaphore(DECODERS)
# The page loads nothing from elsewhere; the policy makes the browser hold it to that.
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; "
                                           "base-uri 'none'; frame-ancestors 'none'",
                "Cache-Control": "no-cache"}
ERRORS = {status: {"model": ErrorMessage, "description": text} for status, text in (
    (400, "a Host the server does not answer to, a bad Content-Length, or a broken multipart body "
          "(more than 4 fields, more than 1 file)"),
    (408, "body not received within 30 s"), (409, "the server has no data for this set"),
    (413, "body larger than 5 MB"), (415, "neither JSON nor multipart/form-data"),
    (422, "wrong shape, not numbers, not an image, too many pixels, empty canvas"))}
ERROR_STATUS = {GalleryUnavailable: 409, **TRAIN_ERRORS}
PREDICT_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": CanvasRequest.model_json_schema()},
    "multipart/form-data": {"schema": {
        "type": "object", "required": ["file"], "additionalProperties": False, "properties": {
            "file": {"type": "string", "format": "binary", "description": "a PNG or JPEG photo of one digit"},
            "ink": {"type": "string", "enum": list(INKS), "default": "auto",
                    "description": "dark ink on light paper, light ink on dark, or guess (auto)"}}}}}}}


def create_app(model_path, *, data: DataSource | None = None, allowed_hosts: Iterable[str] | None = None,
               max_body_bytes: int = MAX_BODY_BYTES, train: TrainSetup | None = None, tta: int = 1,
               fast: bool = True) -> FastAPI:
    """The app for the model at ``model_path`` (a model file or run folder), loaded first, here;
    a list of them (or a folder of member runs) serves their ensemble.

    ``data``: where the gallery's digits come from, instead of the run folder's config.toml.
    ``allowed_hosts``: the names requests may address (default: localhost, 127.0.0.1, ::1).
    ``train``: the Train and Runs tabs' settings (default: training on, default limits).
    ``tta``: views of each image averaged (test-time augmentation; 1, the default: the image only).
    ``fast``: predict on the fast path's layers (the default; False: the textbook layers), as every
    model the page serves later does.
    The served model changes when a run ends or the Runs tab loads one: ``app.state.service`` is
    replaced whole (one assignment), and each request works with the service it read first.
    """
    service = ModelService(model_path, data, tta, fast)
    sets = service.gallery.sets

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await run_in_threadpool(app.state.training.close)  # a run in progress saves its model

    # NOTE: no /docs or /redoc: FastAPI's pages load Swagger UI from a CDN, and this page works
    # offline; the schema itself is at /openapi.json
    app = FastAPI(title="scratchnn", version=__version__, docs_url=None, redoc_url=None, lifespan=lifespan,
                  description="Draw a digit and watch a NumPy network think. "
                              "Errors are 4xx with {\"detail\": \"one line\"}.")
    app.state.service = service

    def current() -> ModelService:
        return app.state.service
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    app.add_middleware(SameSiteWrites)  # another site's page cannot start, stop or swap what this one serves
    # added last, so it runs first: a request for another host is refused before its body is read
    app.add_middleware(HostAllowList, allowed=allowed_host_names() if allowed_hosts is None else allowed_hosts)

    @app.exception_handler(ScratchnnError)
    async def scratchnn_error(request: Request, error: ScratchnnError):
        status = next((code for kind, code in ERROR_STATUS.items() if isinstance(error, kind)), 422)
        return JSONResponse({"detail": str(error)}, status_code=status)

    @app.exception_handler(MemoryError)  # a bare 500 and a traceback (the resource audit: photos under ulimit -v)
    async def out_of_memory(request: Request, error: MemoryError):
        OPERATOR.warning("%s %s ran out of memory: %s", request.method, request.url.path, " ".join(str(error).split()))
        return JSONResponse({"detail": "the server is short of memory just now; try again later (a smaller photo "
                                       "needs less)"}, status_code=503)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError):
        return JSONResponse({"detail": one_line(error.errors())}, status_code=422)

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(STATIC_DIR / "index.html", headers=PAGE_HEADERS)

    @app.post("/api/predict", response_model=PredictResponse, openapi_extra=PREDICT_BODY,
              responses={status: ERRORS[status] for status in (400, 408, 413, 415, 422)},
              summary="What the network makes of a drawn canvas or a photo")
    async def predict(request: Request):
        """Send JSON ``{"pixels": [[...]]}`` (a canvas, grey 0..1, light ink on dark, 28..280 a side)
        or a multipart upload ``file`` (PNG/JPEG). Both go through the MNIST-style preprocessing
        of ``scratchnn predict`` (crop, fit in 20x20, centre of mass) before the network sees them.
        """
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        # The body is read here, on the event loop (the middleware already capped its size);
        # the CPU work runs in the thread pool, as FastAPI runs plain ``def`` endpoints.
        if media == "application/json":
            body = await request.body()
            try:
                canvas = CanvasRequest.model_validate_json(body)
            except ValidationError as error:
                whole = not error.errors()[0].get("loc")  # not JSON, or not an object: say what is
                raise HTTPException(422, one_line(error) + (CANVAS_SHAPE if whole else "")) from None
            return await to_thread.run_sync(_timed, _canvas_input, current(), canvas, limiter=_predicting(request))
        if media == "multipart/form-data":
            try:
                form = await request.form(max_files=1, max_fields=4)
            except (StarletteHTTPException, ValueError) as error:  # Starlette's own words ("Missing boundary in
                # multipart."); before Starlette 1.7, python-multipart's parse error itself (a ValueError: a 500)
                why = (error.detail if isinstance(error, StarletteHTTPException) else str(error)[:80]).rstrip(".")
                raise HTTPException(getattr(error, "status_code", 400), f"the multipart body cannot be read ({why}); "
                                    "send the photo in the field 'file', as curl -F file=@photo.png does") from None
            try:
                upload, ink = form.get("file"), form.get("ink", "auto")
                if not isinstance(upload, UploadFile):
                    raise HTTPException(422, "send the image as a file in the multipart field 'file'")
                if ink not in INKS:
                    raise HTTPException(422, f"ink must be one of {', '.join(INKS)}, got {str(ink)[:40]!r}")
                data = await upload.read()
            finally:
                await form.close()  # the upload's spooled file
            return await to_thread.run_sync(_timed, _image_input, current(), data, ink, limiter=_predicting(request))
        raise HTTPException(415, f"unsupported content type {media[:60]!r}: send JSON {{\"pixels\": [[...]]}} "
                                 "(application/json) or a photo in the multipart/form-data field 'file'")

    @app.get("/api/model", response_model=ModelSummary, responses={400: ERRORS[400]},
             summary="The model: layers, parameters, metrics, config")
    def model_summary():
        return current().summary()

    @app.get("/api/gallery", response_model=Gallery, responses={status: ERRORS[status] for status in (400, 409, 422)},
             summary="Random digits of the run's dev or test set that the model gets wrong")
    def gallery(which: str = Query("dev", alias="set", json_schema_extra={"enum": list(sets) or ["dev"]},
                                   description="which set to look in: test only for a model of a named dataset"),
                n: int = Query(12, ge=1, le=100, description="how many mistakes"),
                seed: int | None = Query(None, ge=0, le=2**32 - 1,
                                         description="picks the sample; random when left out")):
        service = current()
        if which not in service.gallery.sets:  # the schema offers only the sets the first model has
            if service.gallery.nothing_to_show():
                raise HTTPException(409, service.gallery.nothing_to_show())
            why = f" ({service.gallery.describe()} has no test split)" if which == "test" else ""
            raise HTTPException(422, f"set: choose {' or '.join(service.gallery.sets)}, got {which[:20]!r}{why}")
        return service.mistakes(which, n, secrets.randbelow(2**31) if seed is None else seed)

    add_training(app, train or TrainSetup(), data)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _predicting(request: Request) -> CapacityLimiter:
    """The app's limiter of PREDICTORS threads, made on its event loop at the first prediction."""
    state = request.app.state
    if getattr(state, "predicting", None) is None:
        state.predicting = CapacityLimiter(PREDICTORS)
    return state.predicting


def _timed(make_input, service: ModelService, *args) -> dict:
    """Preprocess and predict, with the server time it took (ms). ``make_input`` gives the
    (28, 28) image and the digits it falls apart into: more than one (a photo of a number) are
    read one by one too, as ``scratchnn predict`` reads a number."""
    start = time.perf_counter()
    image, digits = make_input(*args)
    result = service.predict(image) | {"digits_seen": len(digits)}
    if len(digits) > 1:
        result["number"], result["number_probabilities"] = service.read_number(digits[:MAX_DIGITS])
    result["milliseconds"] = round((time.perf_counter() - start) * 1000, 3)
    return result


def _canvas_input(canvas: CanvasRequest) -> tuple[np.ndarray, list[np.ndarray]]:
    """(28, 28) input from a drawn canvas (H, W), light ink on dark: one digit, whatever is drawn."""
    pixels = np.asarray(canvas.pixels, np.float32)
    if np.mean(pixels > 0.5) > FILLED:
        raise ImageError(f"{np.mean(pixels > 0.5):.0%} of the canvas is ink: press Clear and draw one digit")
    if not canvas.preprocess:  # the page's own 28x28: still, an empty one is no digit (the web fuzz audit)
        if not pixels.any():
            raise ImageError("the canvas is empty: draw a digit, light strokes on the dark background")
        return pixels, [pixels]
    try:
        image = to_mnist(pixels, ink="light")
        return image, [image]
    except NoInk:  # its message speaks of photos; say it in terms of the canvas
        raise ImageError("no ink found on the canvas: draw a digit, light strokes on the dark background, "
                         "larger than a dot") from None


def _image_input(data: bytes, ink: str) -> tuple[np.ndarray, list[np.ndarray]]:
    """(28, 28) input from the bytes of a photo, as ``scratchnn predict`` prepares one, and one
    per digit its ink falls apart into, left to right (a photo of a number).

    Tighter than the command line, as anyone may send one: PNG, JPEG, WebP, GIF or BMP only, a
    header over UPLOAD_MAX_PIXELS is refused before anything is decoded, big photos are decoded
    small, and at most DECODERS uploads are decoded at once (the rest wait their turn).
    """
    with _decoding:
        gray = read_image(data, max_pixels=UPLOAD_MAX_PIXELS, formats=UPLOAD_FORMATS, reduce_to=WORK_SIDE)
        return to_mnist_and_digits(gray, ink=ink)
