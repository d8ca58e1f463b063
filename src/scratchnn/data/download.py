"""Downloading one published file into the cache, verified: streamed to a temp file as it
arrives, checked against its MD5 (and SHA-256 when known), then renamed into place, so the
cache never holds half a file. Bounded in size (``MAX_DOWNLOAD``, or the file's own) and in
speed (given up under ``MIN_RATE`` after ``SLOW_AFTER`` seconds); a cache that cannot take the
file (a full disk) is the disk's fault, not the mirror's (``CacheUnwritable``), and a connection
that broke off or went silent mid-file is worth one more try (``CutOff``). A temp file left by a
download that was killed (``STALE_AFTER`` untouched) is removed by the next one. ``sources`` says
which files, from where.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import ssl
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

TIMEOUT = 10.0  # seconds per connection attempt; offline, DNS fails at once anyway
CHUNK = 64 << 10  # a download's reads: what arrived, up to this (a progress bar that moves, a stall that shows)
SLOW_AFTER, MIN_RATE = 30.0, 1024  # a download under 1 kB/s on average after 30 s is given up (a trickle: 95 days)
# No dataset file is larger (Fashion-MNIST's training images: 26 MB): a mirror, or a man in the middle
# of an http:// one, that sends more is cut off before it fills the disk; the checksum comes after.
MAX_DOWNLOAD = 64 << 20
# A live download writes its temp file at least every TIMEOUT seconds (or gives up): one untouched
# for this long belongs to a download that was killed (SIGKILL, a power cut) and is removed.
STALE_AFTER = 600.0


@dataclass(frozen=True)
class RemoteFile:
    """One published file: its name and the checksums of its .gz as published (none for a file
    that comes in an archive, which has its own); a download of more than ``max_bytes`` (default
    MAX_DOWNLOAD) is cut off."""
    name: str
    md5: str = ""
    sha256: str | None = None
    max_bytes: int | None = None


class CutOff(str):
    """Why a download failed, when the connection broke off mid-file: worth one more try."""


class CacheUnwritable(Exception):
    """The cache folder refused a file: the disk, not the mirror (no other mirror is tried)."""


@contextmanager
def _into_cache(cache: Path):
    """An OSError while writing into ``cache`` is the disk's (CacheUnwritable), not the mirror's."""
    try:
        yield
    except OSError as error:
        raise CacheUnwritable(f"cannot write to the cache folder {cache} ({error.strerror or error}); free some "
                              "space there, or set XDG_CACHE_HOME to a folder you can write to, or pass --data-dir "
                              "DIR holding the files") from None


def fetch(url: str, remote: RemoteFile, cache: Path, progress: bool) -> str | None:
    """Stream ``url`` into ``cache/remote.name`` if its checksums match; None on success, else why.
    Raises CacheUnwritable when the cache cannot take the file."""
    with _into_cache(cache):
        cache.mkdir(parents=True, exist_ok=True)
        _remove_stale(cache, remote.name)
        fd, tmp = tempfile.mkstemp(prefix=f".{remote.name}.", suffix=".part", dir=cache)
    md5, sha256 = hashlib.md5(), hashlib.sha256()
    received, size, opening = 0, None, b""
    try:
        # unbuffered: a full disk fails the write it happens in, not again in close() as another error
        with os.fdopen(fd, "wb", buffering=0) as out, urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            header = response.headers.get("Content-Length") or ""
            size = int(header) if header.strip().isdigit() and int(header) > 0 else None  # 'abc': not known
            most = remote.max_bytes or MAX_DOWNLOAD
            too_big = f"the server sends more than {most:,} bytes, more than {remote.name} needs"
            if (size or 0) > most:
                return too_big
            received, start = 0, time.monotonic()
            with _progress_bar(remote.name, size, progress) as bar:
                while block := response.read1(CHUNK):
                    received += len(block)
                    if received > most:  # no Content-Length, or one that lied
                        return too_big
                    with _into_cache(cache):  # a full disk, not the mirror wrong
                        _write_all(out, block)
                    md5.update(block)
                    sha256.update(block)
                    opening = opening or block[:PAGE_START]
                    bar.update(len(block))
                    seconds = time.monotonic() - start
                    if seconds > SLOW_AFTER and received < MIN_RATE * seconds:
                        return (f"too slow: {received:,} bytes in {seconds:.0f} s, under 1 kB/s; try again later "
                                "(or another mirror: SCRATCHNN_MIRRORS)")
            if size is not None and received < size:
                return CutOff(f"the connection closed after {received:,} of {size:,} bytes; try again")
            with _into_cache(cache):
                os.fsync(out.fileno())
        if _web_page(opening):  # 200 and a page: a checksum mismatch would hide what happened
            return (f"the server sent a web page ({received:,} bytes), not the file: a Wi-Fi or proxy login page? "
                    "Log in with a browser, then try again")
        if md5.hexdigest() != remote.md5:
            return f"checksum mismatch (MD5 {md5.hexdigest()}, expected {remote.md5})"
        if remote.sha256 and sha256.hexdigest() != remote.sha256:
            return f"checksum mismatch (SHA-256 {sha256.hexdigest()}, expected {remote.sha256})"
        os.replace(tmp, cache / remote.name)  # atomic: the cache never holds half a file
        return None
    except urllib.error.HTTPError as error:  # a redirect loop's reason runs over three lines
        return " ".join(f"HTTP {error.code} {error.reason}".split())
    except urllib.error.URLError as error:
        reason = error.reason
        why = " ".join(str(getattr(reason, "strerror", None) or reason).split())
        return why + (CERTIFICATES if isinstance(reason, ssl.SSLCertVerificationError) else "")
    except (OSError, http.client.HTTPException, ValueError) as error:  # timeouts, cut-off bodies, bad URLs
        why = " ".join(str(error).split()) or type(error).__name__
        if isinstance(error, TimeoutError) and received:  # it went silent mid-file
            of = f" of {size:,}" if size else ""
            return CutOff(f"the connection went silent after {received:,}{of} bytes (nothing for {TIMEOUT:g} s); "
                          "try again")
        broke_off = (ConnectionResetError, ConnectionAbortedError, http.client.IncompleteRead)
        return CutOff(why) if isinstance(error, broke_off) else why
    finally:
        Path(tmp).unlink(missing_ok=True)  # gone already after a successful os.replace


PAGE_START = 256  # first bytes kept of a download, to tell a web page from the file
# Why HTTPS certificates fail to verify on a learner's machine, and what to do
CERTIFICATES = (" (a proxy or antivirus that inspects HTTPS, or a Python without its certificates: on macOS run "
                "'Install Certificates.command' in its Applications folder; else point SSL_CERT_FILE at your "
                "network's certificate bundle)")


def _web_page(opening: bytes) -> bool:
    """Whether a download's first bytes are an HTML page (a captive portal's login, a proxy's block
    page), which no dataset file is: those are gzip, zip or IDX."""
    return opening.lstrip().lower().startswith((b"<!doctype html", b"<html", b"<head", b"<?xml"))


def _remove_stale(cache: Path, name: str) -> None:
    """Remove the temp files of ``name`` that no download has written to for ``STALE_AFTER`` s."""
    now = time.time()
    for part in cache.glob(f".{name}.*.part"):
        try:
            if now - part.stat().st_mtime > STALE_AFTER:
                part.unlink()
        except FileNotFoundError:  # another process removed it first
            pass


def _write_all(out, block: bytes) -> None:
    """``block`` into the unbuffered file ``out``, which may take less than all of it at once."""
    view = memoryview(block)
    while view:
        view = view[out.write(view):]


def _progress_bar(name: str, total: int | None, enabled: bool):
    """A tqdm bar on stderr, drawn only when enabled and stderr is a terminal (a log gets the one
    "Downloading" line instead)."""
    from tqdm import tqdm  # lazy: only downloads need it

    return tqdm(total=total, desc=name, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
                leave=False, disable=not (enabled and sys.stderr.isatty()))
