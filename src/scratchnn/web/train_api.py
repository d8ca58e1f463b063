"""The Train and Runs tabs' API: start, watch and stop a run; list, compare and load run folders.

    GET  /api/train              whether this server trains, the settings a run may change (with
                                 their help, choices and ranges), the presets, the limits, the state
    POST /api/train              {"preset": "seed", "epochs": 30, ...} -> 202 and the state; 409 while
                                 another run trains (naming it) or when the server does not train;
                                 422 naming the flag of a bad value (the rules of ``scratchnn train``)
    POST /api/train/stop         stop after the current batch; the model is saved and served
    POST /api/train/pause        wait between two batches; /api/train/resume goes on
    GET  /api/train/events       Server-Sent Events: ``id: <run>:<n>`` and ``data: <json>`` per event,
                                 the whole run so far first (or after Last-Event-ID), ~5 messages a
                                 second while it trains, ending once the run is over
    GET  /api/runs               the run folders beside the served one, newest first
    GET  /api/runs/{name}/curves metrics.csv of a run
    POST /api/runs/{name}/load   serve that run's model
"""
from __future__ import annotations

import asyncio
import json
import threading

from fastapi import APIRouter, HTTPException, Path as PathParam, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from ..training.config import TrainConfig
from ..training.presets import PRESETS
from .disk_budget import DiskFull
from .operator_log import OPERATOR
from .runs import MAX_RUN_PATH, RUN_NAME, RunFolders, RunNotFound, reading
from .schemas import ErrorMessage, ModelSummary
from .training import TrainingBusy, TrainingManager, TrainingUnavailable, train_settings
from .worker_start import WorkerNotStarted

POLL_SECONDS = 0.2  # the event stream sends what arrived, at most 5 times a second
PING_SECONDS = 15.0  # a comment line keeps idle proxies from closing the stream
MAX_WATCHERS = 64  # event streams open at once: each holds a connection (a class of 30 pages, with room)
EVENT_STREAM = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class TrainState(BaseModel):
    model_config = ConfigDict(extra="allow")
    status: str = Field(description="idle, starting, running, paused, stopping, finished, stopped or failed")


class TrainInfo(BaseModel):
    enabled: bool
    reason: str = Field(description="why this server does not train, when it does not")
    state: TrainState
    options: list[dict] = Field(description="the settings a run may change: name, flag, help, group, type, "
                                            "choices and range")
    presets: dict[str, dict] = Field(description="each preset's settings")
    limits: dict = Field(description="what one run may ask of this server")


class RunInfo(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str


class RunList(BaseModel):
    current: str = Field(description="the served model's run folder")
    runs: list[RunInfo] = Field(description="the newest runs (at most 100), and the served one")
    total: int = Field(description="how many run folders there are")
    newest: int = Field(description="how many of the newest are listed (the served one may follow them)")


class RunCurves(BaseModel):
    name: str
    rows: list[dict] = Field(description="one row per evaluation: epoch, train/dev loss and accuracy (at most "
                                         "2,000, evenly spaced, the last always)")


def _errors(*statuses: int) -> dict:
    text = {404: "no such run", 409: "another run is training, or this server does not train", 415: "not JSON",
            422: "a setting out of range, of the wrong type or unknown", 429: "too many pages are watching",
            503: "the server could not start a worker process just now (a process, semaphore or file limit)",
            507: "the runs trained from the page fill the disk this server allows"}
    return {status: {"model": ErrorMessage, "description": text[status]} for status in statuses}


def _train_body() -> dict:
    """The POST /api/train body's JSON schema, from the options' own declarations."""
    properties = {"preset": {"type": "string", "enum": list(PRESETS), "default": "seed"}}
    for name, spec in train_settings().items():
        default = getattr(TrainConfig(), name)
        if isinstance(default, bool):
            schema = {"type": "boolean"}
        elif isinstance(default, list):
            item = {"type": "string", "enum": list(spec.choices)} if spec.choices else {"type": "integer", "minimum": 1}
            schema = {"type": "array", "items": item}
        elif spec.choices:
            schema = {"type": "string", "enum": list(spec.choices)}
        else:
            schema = {"type": "integer" if isinstance(default, int) else "number"}
        properties[name] = {**schema, "description": spec.help}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "additionalProperties": False, "properties": properties}}}}}


def option_list() -> list[dict]:
    fields = ("help", "group", "choices", "low", "high", "above", "below")
    defaults = TrainConfig()
    return [{"name": name, "flag": spec.flag, "type": type(getattr(defaults, name)).__name__,
             **{field: getattr(spec, field) for field in fields}} for name, spec in train_settings().items()]


def presets() -> dict[str, dict]:
    """Every preset's value of every setting a page may change (the form's starting points)."""
    settings = train_settings()
    return {name: {key: getattr(config, key) for key in settings} for name, config in PRESETS.items()}


def training_router(manager: TrainingManager, runs: RunFolders, use_run, current_run,
                    switchable: bool = True) -> APIRouter:
    """The routes above, over ``manager`` and ``runs``; ``use_run(path)`` serves a model,
    ``current_run()`` names the served one."""
    router = APIRouter()
    watchers = threading.BoundedSemaphore(MAX_WATCHERS)

    @router.get("/api/train", response_model=TrainInfo, summary="Whether and how this server trains")
    def train_info():
        limits = manager.limits
        return {"enabled": not manager.unavailable, "reason": manager.unavailable, "state": manager.state,
                "options": option_list(), "presets": presets(),
                "limits": {"epochs": limits.epochs, "seconds": limits.seconds, "width": limits.width,
                           "channels": limits.channels, "layers": limits.layers, "memory_gb": limits.memory,
                           "disk_gb": limits.disk}}

    @router.get("/api/train/state", response_model=TrainState, summary="The run on now, or the last one")
    def train_state():
        """What an idle page asks every few seconds, to follow a run another visitor starts."""
        return manager.state

    @router.post("/api/train", status_code=202, response_model=TrainState, openapi_extra=_train_body(),
                 responses=_errors(409, 415, 422, 503, 507), summary="Start a run in a worker process")
    async def start(request: Request):
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json":
            raise HTTPException(415, f"send the settings as JSON (Content-Type: application/json), not "
                                     f"{media[:60] or 'no content type'}: {{\"preset\": \"seed\"}}")
        try:
            body = json.loads(await request.body() or b"null", object_pairs_hook=_once_each)
        except _GivenTwice as error:  # {"epochs": 5, "epochs": 500} took the last, where a proxy may read the first
            raise HTTPException(422, f"{str(error)[:60]} is given twice in the settings; send each once") from None
        except (ValueError, RecursionError) as error:  # not JSON, not UTF-8, a 5,000-digit number, [[[... deep
            if "integer string conversion" in str(error) or "Exceeds the limit" in str(error):
                raise HTTPException(422, "a number in the settings has thousands of digits; send settings in "
                                         "their ranges (GET /api/train lists them)") from None
            raise HTTPException(422, "send the settings as a JSON object like {\"preset\": \"seed\"}") from None
        return await run_in_threadpool(manager.start, body, client_of(request))

    @router.post("/api/train/stop", response_model=TrainState, summary="Stop the run after its current batch")
    def stop():
        return manager.stop()

    @router.post("/api/train/pause", response_model=TrainState, summary="Pause the run between two batches")
    def pause():
        return manager.pause(True)

    @router.post("/api/train/resume", response_model=TrainState, summary="Resume a paused run")
    def resume():
        return manager.pause(False)

    @router.get("/api/train/events", responses={200: {"content": {"text/event-stream": {}}}, **_errors(429)},
                response_class=StreamingResponse, summary="The run so far, then its events as they happen")
    async def events(request: Request):
        run_id, seq = _last_event_id(request.headers.get("last-event-id", ""))
        if not watchers.acquire(blocking=False):
            detail = f"{MAX_WATCHERS} pages are watching already; the page tries again by itself"
            return JSONResponse({"detail": detail}, status_code=429)
        return StreamingResponse(_stream(manager, run_id, seq, watchers), media_type="text/event-stream",
                                 headers=EVENT_STREAM)

    @router.get("/api/runs", response_model=RunList, summary="The run folders beside the served one")
    def run_list():
        current = current_run()
        found, total, newest = runs.described(current)
        return {"current": current, "runs": found, "total": total, "newest": newest}

    # checked by RunFolders (run_parts): every bad name gets its friendly 404, not a pattern's 422
    name_param = PathParam(max_length=MAX_RUN_PATH, description=f"a run folder's name ({RUN_NAME.pattern}), or an "
                           "ensemble member's or a sweep trial's path from the runs folder (ensemble/seed-1, "
                           "sweep/trials/0042)")

    @router.get("/api/runs/{name:path}/curves", response_model=RunCurves, responses=_errors(404, 422),
                summary="A run's loss and accuracy per evaluation")
    def run_curves(name: str = name_param):
        return {"name": name, "rows": runs.curves(name)}

    @router.post("/api/runs/{name:path}/load", response_model=ModelSummary, responses=_errors(404, 409, 422),
                 summary="Serve this run's model")
    def load_run(request: Request, name: str = name_param):
        if not switchable:  # a demo server: no visitor changes the model every other visitor gets
            raise TrainingUnavailable("this server serves one model (scratchnn serve --no-train or --keep-model); "
                                      "loading another run is switched off")
        folder = runs.readable(name)
        if not (folder / "model.safetensors").is_file():
            raise RunNotFound(f"run {name!r} has no model yet (still training, or stopped before saving)")
        with reading(folder):
            summary = use_run(folder / "model.safetensors").summary()
        OPERATOR.info("run %s loaded from the Runs tab by %s; now served to every page", name, client_of(request))
        return summary

    return router


async def _stream(manager: TrainingManager, run_id: int, seq: int, watchers):
    """The event stream: everything after (run_id, seq), then what arrives, until the run is over."""
    quiet = 0.0
    try:
        yield f"retry: 2000\n: run {manager.state.get('run', 'none')}\n\n"
        while True:
            run_id, found, over = manager.events_after(run_id, seq)
            if found:
                seq = found[-1][0]
                yield "".join(f"id: {run_id}:{n}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n"
                              for n, event in found)
                quiet = 0.0
            elif over:
                return
            await asyncio.sleep(POLL_SECONDS)
            quiet += POLL_SECONDS
            if quiet >= PING_SECONDS:
                yield ": ping\n\n"
                quiet = 0.0
    finally:
        watchers.release()


class _GivenTwice(ValueError):
    """A JSON object that names one key twice."""


def _once_each(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object as a dict, or _GivenTwice naming the first key it holds twice."""
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise _GivenTwice(json.dumps(key))
        seen.add(key)
    return dict(pairs)


def client_of(request: Request) -> str:
    """Who sent ``request``, for the run's 'started by' and the operator's console: its address
    (behind a proxy on this machine, the browser's: uvicorn reads X-Forwarded-For from 127.0.0.1)."""
    return request.client.host if request.client else "someone"


def _last_event_id(header: str) -> tuple[int, int]:
    """'3:120' -> (3, 120): the run and the last event a reconnecting browser saw; (0, 0) otherwise."""
    run, _, seq = header.partition(":")
    if run.isascii() and seq.isascii() and run.isdigit() and seq.isdigit() and len(header) < 40:  # not '²:³'
        return int(run), int(seq)
    return 0, 0


TRAIN_ERRORS = {TrainingBusy: 409, TrainingUnavailable: 409, RunNotFound: 404, DiskFull: 507, WorkerNotStarted: 503}
