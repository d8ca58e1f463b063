"""Downloading one published file into the cache, verified: streamed to a temp file as it
arrives, checked against its MD5 (and SHA-256 when known), then renamed into place, so the
cache never holds half a file. Bounded in size (``MAX_DOWNLOAD``, or the file's own) and in
speed (given up under ``MIN_RATE`` after ``SLOW_AFTER`` seconds); a cache that cannot take the
file (a full disk) is the disk's fault, not the mirror's (``CacheUnwritable``), and a connection
that broke off or went silent mid-file is worth another try (``CutOff``), which asks for the rest
only (``Range: bytes=N-``; a server that answers 206 with that part is appended to, one that sends
the whole file again starts it again, one that sends another part is refused). A download that was
interrupted (Ctrl+C, a kill, a connection given up after its tries) leaves its temp file, which the
next download of the file continues from, as huggingface_hub's ``.incomplete`` files do (EMNIST's
half-gigabyte zip began again from 0 after a Ctrl+C at 400 MB); its bytes are checked with the rest,
and a file that does not match begins once more from 0. ``sources`` says which files, from where.
"""
from __future__ import annotations

import hashlib
import os
import re
import socket
import stat
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..files import process_gone

TIMEOUT = 10.0  # seconds per connection attempt; offline, DNS fails at once anyway
CHUNK = 64 << 10  # a download's reads: what arrived, up to this (a progress bar that moves, a stall that shows)
SLOW_AFTER, MIN_RATE = 30.0, 1024  # a download under 1 kB/s on average after 30 s is given up (a trickle: 95 days)
# No dataset file is larger (Fashion-MNIST's training images: 26 MB): a mirror, or a man in the middle
# of an http:// one, that sends more is cut off before it fills the disk; the checksum comes after.
MAX_DOWNLOAD = 64 << 20
# A live download writes its temp file at least every TIMEOUT seconds (or gives up): one untouched
# for this long belongs to a download that was killed (SIGKILL, a power cut), as does one named after
# a process of this machine that is gone (``.NAME.HOST-PID-xxxx.part``, HOST a hash of the machine's
# name: a cache shared over NFS, or with a container, holds other machines' pids), and the next
# download of its file continues from its bytes. One kept for KEEP_PART_FOR is removed.
STALE_AFTER = 600.0
KEEP_PART_FOR = 7 * 86400.0
_WRITING: set[Path] = set()  # the temp files this process is writing now: never taken over


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
    """Why a download failed, when the connection broke off mid-file: worth one more try, which
    continues from ``partial`` (what arrived) where the server allows it."""
    partial: Partial | None = None


@dataclass
class Partial:
    """What a download has received so far: its temp file, kept when the connection is cut off so
    the next try can ask for the rest (an HTTP Range request), and the checksums of those bytes."""
    tmp: Path
    received: int = 0
    size: int | None = None  # the whole file's, when the server said
    md5: Any = field(default_factory=hashlib.md5)
    sha256: Any = field(default_factory=hashlib.sha256)
    opening: bytes = b""  # its first bytes, to tell a web page from the file
    taken_over: int = 0  # bytes an interrupted download had received (take_over)

    def restart(self, size: int | None = None) -> None:
        """Back to nothing received (the server sends the whole file again, of ``size`` bytes)."""
        self.received, self.size, self.opening, self.taken_over = 0, size, b"", 0
        self.md5, self.sha256 = hashlib.md5(), hashlib.sha256()

    def intact(self) -> bool:
        """Whether the temp file still holds what was received (the checksums are of those bytes)."""
        try:
            return self.tmp.stat().st_size == self.received
        except OSError:
            return False

    def add(self, block: bytes, out) -> None:
        _write_all(out, block)
        self.received += len(block)
        self.md5.update(block)
        self.sha256.update(block)
        self.opening = self.opening or block[:PAGE_START]

    def take_over(self, part: Path, most: int) -> bool:
        """Continue from ``part``, an interrupted download's temp file: its bytes copied into this
        one's and hashed, then it is removed. Copied, not renamed: a download that was only thought
        gone (a process stopped with Ctrl+Z past STALE_AFTER) writes on into its own file, not into
        this one or the cache (the review: a renamed file took both downloads' bytes). False if it
        cannot be read as a plain file of at most ``most`` bytes (a link is not followed)."""
        try:
            fd = os.open(part, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0))
        except OSError:  # gone (another download took it), or a link
            part.unlink(missing_ok=True)
            return False
        with os.fdopen(fd, "rb") as stream, open(self.tmp, "ab", buffering=0) as out:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return False
            while (block := stream.read(CHUNK)) and self.received + len(block) <= most:
                self.add(block, out)
        part.unlink(missing_ok=True)
        if not block:
            self.taken_over = self.received
            return True
        self.restart()  # more than the file can be: not its bytes
        self.tmp.write_bytes(b"")
        return False

    def cut(self, why: str) -> CutOff:
        """Why the connection broke off, with this partial download for the next try."""
        cut = CutOff(why)
        cut.partial = self
        return cut


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


def fetch(url: str, remote: RemoteFile, cache: Path, progress: bool, partial: Partial | None = None,
          resume: bool = True) -> str | None:
    """Stream ``url`` into ``cache/remote.name`` if its checksums match; None on success, else why.
    Given the ``partial`` of a try that was cut off, ask only for the rest; without one, continue
    an interrupted download's (unless not ``resume``). Raises CacheUnwritable when the cache cannot
    take the file."""
    import http.client  # the network's modules (20 ms): only a download pays for them, not every import
    import ssl
    import urllib.error
    import urllib.request

    with _into_cache(cache):
        cache.mkdir(parents=True, exist_ok=True)
        if partial is None:
            fd, tmp = tempfile.mkstemp(prefix=f".{remote.name}.{HOST}-{os.getpid()}-", suffix=".part", dir=cache)
            os.close(fd)
            partial = Partial(Path(tmp))
            _WRITING.add(partial.tmp)
            most = remote.max_bytes or MAX_DOWNLOAD
            interrupted = _interrupted(cache, remote.name, most) if resume else []
            if any(partial.take_over(part, most) for part in interrupted) and progress:
                print(f"  continuing from byte {partial.received:,}, where an interrupted download of it stopped",
                      file=sys.stderr)
    _WRITING.add(partial.tmp)
    if partial.received and not partial.intact():  # its temp file lost or changed since: from the start
        partial.restart()
    got, keep = 0, False  # bytes of this try; whether the temp file is kept for the next
    try:
        if partial.taken_over and _matches(partial, remote):  # killed after the last byte, before the rename
            os.replace(partial.tmp, cache / remote.name)
            return None
        asked = {"Range": f"bytes={partial.received}-"} if partial.received else {}
        with urllib.request.urlopen(urllib.request.Request(url, headers=asked), timeout=TIMEOUT) as response:
            continues, partial.size = _part_sent(response, partial.received)
            if not continues:  # the whole file (a server that ignores Range): start again
                if partial.received and progress:
                    print(f"{url} sends the whole file again (it ignores a request for the rest): from byte 0",
                          file=sys.stderr)
                partial.restart(partial.size)
            most = remote.max_bytes or MAX_DOWNLOAD
            too_big = f"the server sends more than {most:,} bytes, more than {remote.name} needs"
            if (partial.size or 0) > most:
                return too_big
            start = time.monotonic()
            with _into_cache(cache):  # unbuffered: a full disk fails the write it happens in, not close()
                out = open(partial.tmp, "ab" if partial.received else "wb", buffering=0)  # nothing kept: anew
            with out, _progress_bar(remote.name, partial.size, progress, partial.received) as bar:
                while block := response.read1(CHUNK):
                    if partial.received + len(block) > most:  # no Content-Length, or one that lied
                        return too_big
                    with _into_cache(cache):  # a full disk, not the mirror wrong
                        partial.add(block, out)
                    got += len(block)
                    bar.update(len(block))
                    seconds = time.monotonic() - start
                    if seconds > SLOW_AFTER and got < MIN_RATE * seconds:
                        return (f"too slow: {got:,} bytes in {seconds:.0f} s, under 1 kB/s; try again later "
                                "(or another mirror: SCRATCHNN_MIRRORS)")
                if partial.size is not None and partial.received < partial.size:
                    keep = True
                    return partial.cut(f"the connection closed after {partial.received:,} of {partial.size:,} "
                                       "bytes; try again")
                with _into_cache(cache):
                    os.fsync(out.fileno())
        if _web_page(partial.opening):  # 200 and a page: a checksum mismatch would hide what happened
            return (f"the server sent a web page ({partial.received:,} bytes), not the file: a Wi-Fi or proxy login "
                    "page? Log in with a browser, then try again")
        if not _matches(partial, remote) and partial.taken_over:  # the interrupted bytes: of an older file?
            if progress:
                print(f"  {remote.name} does not match its checksum after continuing an interrupted download: "
                      "downloading it again from byte 0", file=sys.stderr)  # below, once the temp file is gone
        elif partial.md5.hexdigest() != remote.md5:
            return f"checksum mismatch (MD5 {partial.md5.hexdigest()}, expected {remote.md5})"
        elif remote.sha256 and partial.sha256.hexdigest() != remote.sha256:
            return f"checksum mismatch (SHA-256 {partial.sha256.hexdigest()}, expected {remote.sha256})"
        elif not partial.intact():  # written to by another hand since: its bytes are not all ours
            if (cache / remote.name).is_file():  # a download that took this one's bytes over finished it
                return None
            if not resume:  # this is the second try already
                return (f"{partial.tmp.name} changed while it downloaded, twice: does another program write into "
                        f"{cache}?")
            if progress:
                print(f"  {partial.tmp.name} changed while it downloaded: downloading it again from byte 0",
                      file=sys.stderr)
        else:
            os.replace(partial.tmp, cache / remote.name)  # atomic: the cache never holds half a file
            sweep_interrupted(cache, remote.name)  # what others left of it is of no more use
            return None
    except urllib.error.HTTPError as error:  # a redirect loop's reason runs over three lines
        if error.code != 416 or not partial.received:
            return " ".join(f"HTTP {error.code} {error.reason}".split())
        # 416: no bytes from there; the file is shorter than it was (it changed): the whole one, afresh
    except urllib.error.URLError as error:
        reason = error.reason
        why = " ".join(str(getattr(reason, "strerror", None) or reason).split())
        return why + (CERTIFICATES if isinstance(reason, ssl.SSLCertVerificationError) else "")
    except (OSError, http.client.HTTPException, ValueError) as error:  # timeouts, cut-off bodies, bad URLs
        why = " ".join(str(error).split()) or type(error).__name__
        if isinstance(error, TimeoutError) and got:  # it went silent mid-file
            of = f" of {partial.size:,}" if partial.size else ""
            keep = True
            return partial.cut(f"the connection went silent after {partial.received:,}{of} bytes (nothing for "
                               f"{TIMEOUT:g} s); try again")
        keep = isinstance(error, (ConnectionResetError, ConnectionAbortedError, http.client.IncompleteRead))
        return partial.cut(why) if keep else why
    except KeyboardInterrupt:  # Ctrl+C: what came is kept for the next download to continue from
        keep = partial.received > 0
        raise
    finally:
        _WRITING.discard(partial.tmp)
        if not keep:
            partial.tmp.unlink(missing_ok=True)  # gone already after a successful os.replace
    return fetch(url, remote, cache, progress, resume=False)  # after a 416, or interrupted bytes that did not match


CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


def _part_sent(response, received: int) -> tuple[bool, int | None]:
    """(whether ``response`` continues the file from byte ``received``, the whole file's size if
    said). A 206 must say a part that starts there (it may end before the file does: the rest is
    asked for next); any other answer is the whole file from its first byte."""
    if response.status != 206:
        header = response.headers.get("Content-Length") or ""
        return False, int(header) if header.strip().isdigit() and int(header) > 0 else None  # 'abc': not known
    said = CONTENT_RANGE.fullmatch((response.headers.get("Content-Range") or "").strip())
    first, last, whole = (said[1], said[2], said[3]) if said else ("", "", "")
    if not said or int(first) != received or int(last) < received or (whole != "*" and int(last) >= int(whole)):
        raise ValueError(f"the server sent another part of the file than asked for (bytes={received}-, "
                         f"got Content-Range {(response.headers.get('Content-Range') or 'none')[:60]!r})")
    return True, None if whole == "*" else int(whole)


PAGE_START = 256  # first bytes kept of a download, to tell a web page from the file
# Why HTTPS certificates fail to verify on a learner's machine, and what to do
CERTIFICATES = (" (a proxy or antivirus that inspects HTTPS, or a Python without its certificates: on macOS run "
                "'Install Certificates.command' in its Applications folder; else point SSL_CERT_FILE at your "
                "network's certificate bundle)")


def _web_page(opening: bytes) -> bool:
    """Whether a download's first bytes are an HTML page (a captive portal's login, a proxy's block
    page), which no dataset file is: those are gzip, zip or IDX."""
    return opening.lstrip().lower().startswith((b"<!doctype html", b"<html", b"<head", b"<?xml"))


def _matches(partial: Partial, remote: RemoteFile) -> bool:
    """Whether the bytes received are the published file (its MD5, and SHA-256 when known)."""
    return partial.md5.hexdigest() == remote.md5 and (not remote.sha256 or partial.sha256.hexdigest() == remote.sha256)


def _interrupted(cache: Path, name: str, most: int) -> list[Path]:
    """The temp files of ``name`` that interrupted downloads left, the largest first: those named
    after a process of this machine that is gone, or that no download has written to for
    ``STALE_AFTER`` s (another machine's, or Windows', where a pid cannot be checked). Those older
    than KEEP_PART_FOR, larger than ``most`` or not plain files are removed."""
    now, found = time.time(), []
    for part in cache.glob(f".{name}.*.part"):
        if part in _WRITING:
            continue
        try:
            about = part.lstat()
            if now - about.st_mtime > KEEP_PART_FOR or about.st_size > most or not stat.S_ISREG(about.st_mode):
                part.unlink()
            elif now - about.st_mtime > STALE_AFTER or _owner_gone(part.name, name):
                found.append((about.st_size, part))
        except FileNotFoundError:  # another process took it, or removed it, first
            pass
    return [part for _, part in sorted(found, reverse=True)]


def sweep_interrupted(cache: Path, name: str) -> None:
    """Remove what interrupted downloads of ``name`` left, once the file is in the cache (a
    Ctrl+C'd half-gigabyte part stayed beside the finished file for good: the review)."""
    for part in _interrupted(cache, name, MAX_DOWNLOAD << 4):
        part.unlink(missing_ok=True)


def expire_parts(root: Path) -> None:
    """Remove the temp files of interrupted downloads, of any dataset under ``root`` (the cache),
    that no download has written to for KEEP_PART_FOR (the disk audit: only a download of the same
    file removed one, so EMNIST's 0.6 GB given up stayed for good)."""
    cutoff = time.time() - KEEP_PART_FOR
    for part in root.glob("*/.*.part"):
        try:
            about = part.lstat()
            if part not in _WRITING and stat.S_ISREG(about.st_mode) and about.st_mtime < cutoff:
                part.unlink()
        except OSError:  # gone meanwhile, or not ours to remove: the next lookup tries again
            continue


HOST = hashlib.sha256(socket.gethostname().encode("utf-8", "surrogateescape")).hexdigest()[:8]  # in temp file names


def _owner_gone(part: str, name: str) -> bool:
    """Whether the process a temp file ``.NAME.HOST-PID-xxxx.part`` is named after ran on this
    machine and no longer runs."""
    host, _, rest = part[len(name) + 2:].partition("-")
    pid = rest.partition("-")[0]
    return host == HOST and pid.isascii() and pid.isdigit() and len(pid) < 10 and process_gone(int(pid))


def _write_all(out, block: bytes) -> None:
    """``block`` into the unbuffered file ``out``, which may take less than all of it at once."""
    view = memoryview(block)
    while view:
        view = view[out.write(view):]


def _progress_bar(name: str, total: int | None, enabled: bool, done: int = 0):
    """A tqdm bar on stderr, drawn only when enabled and stderr is a terminal (a log gets the one
    "Downloading" line instead); ``done``: bytes a try before this one received."""
    from tqdm import tqdm  # lazy: only downloads need it

    return tqdm(total=total, initial=done, desc=name, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
                leave=False, disable=not (enabled and sys.stderr.isatty()))
