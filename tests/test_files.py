"""atomic_write_bytes under crash injection: the order of fsync and rename, and what a crash leaves.

A power cut cannot be simulated in a test, but what survives one is decided by the order of the
system calls: the data must be fsynced before the rename, and the folder after it. The calls are
recorded in order, then a crash (an exception) is injected at each of them in turn.
And read_small_text, which reads the text files a user hands in, never more than its limit.
"""
import errno
import functools
import os
import stat
import tracemalloc

import pytest

from scratchnn import files
from scratchnn.errors import ConfigError, ScratchnnError
from scratchnn.files import atomic_write_bytes, read_at_most, read_small_text

OLD, NEW = b"old checkpoint " * 100, b"new checkpoint, longer than the old one " * 1000


def record_calls(monkeypatch, crash_at=None, error=OSError(errno.EIO, "Input/output error")):
    """Record os.fsync / os.replace calls as ("fsync file", size, inode), ("fsync folder", inode)
    and ("replace", src, dst); raise ``error`` instead of making the call named ``crash_at``."""
    calls = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        info = os.fstat(fd)
        call = ("fsync folder", info.st_ino) if stat.S_ISDIR(info.st_mode) else ("fsync file", info.st_size, info.st_ino)
        calls.append(call)
        if call[0] == crash_at:
            raise error
        real_fsync(fd)

    def replace(src, dst):
        calls.append(("replace", str(src), str(dst)))
        if crash_at == "replace":
            raise error
        real_replace(src, dst)

    monkeypatch.setattr(files.os, "fsync", fsync)
    monkeypatch.setattr(files.os, "replace", replace)
    return calls


def test_the_data_reaches_the_disk_before_the_rename_and_the_rename_after(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.safetensors"
    path.write_bytes(OLD)
    calls = record_calls(monkeypatch)
    atomic_write_bytes(path, NEW)
    assert path.read_bytes() == NEW
    kinds = [call[0] for call in calls]
    assert "fsync file" in kinds, f"the new file is never fsynced: a power cut can leave it empty ({kinds})"
    assert kinds.index("fsync file") < kinds.index("replace"), (
        f"the rename comes before the data is fsynced: a power cut can leave an empty file under the old name ({kinds})")
    _, size, inode = calls[kinds.index("fsync file")]
    assert size == len(NEW), f"fsync ran on {size} of {len(NEW)} bytes: the data was not flushed to the file first"
    assert inode == path.stat().st_ino, "the fsynced file is not the one renamed into place"
    assert kinds[-1] == "fsync folder" and calls[-1][1] == tmp_path.stat().st_ino, (
        f"the folder is not fsynced after the rename: a power cut can undo the rename ({kinds})")


@pytest.mark.parametrize("crash_at", ["write", "fsync file", "replace", "fsync folder", "interrupt"])
@pytest.mark.parametrize("existed", [True, False])
def test_a_crash_at_any_point_leaves_the_old_file_or_the_new_one_and_no_temporary_file(
        tmp_path, monkeypatch, crash_at, existed):
    path = tmp_path / "model.safetensors"
    if existed:
        path.write_bytes(OLD)
    if crash_at in ("write", "interrupt"):  # the disk fills (or Ctrl-C arrives) halfway through the data
        error = OSError(errno.ENOSPC, "No space left on device") if crash_at == "write" else KeyboardInterrupt()
        monkeypatch.setattr(files.os, "fdopen", half_writer(os.fdopen, error))
        record_calls(monkeypatch)
    else:
        record_calls(monkeypatch, crash_at)
    with pytest.raises((OSError, KeyboardInterrupt)):
        atomic_write_bytes(path, NEW)
    if path.exists():
        assert path.read_bytes() in ((OLD, NEW) if existed else (NEW,)), (
            f"a crash at {crash_at} left {path.stat().st_size} bytes that are neither the old file nor the new one")
    else:
        assert not existed, f"a crash at {crash_at} lost the old file"
    if crash_at == "fsync folder":  # the rename was made: the file is the new one, complete
        assert path.read_bytes() == NEW
    leftovers = [p.name for p in tmp_path.iterdir() if p != path]
    assert leftovers == [], f"a crash at {crash_at} left {leftovers} behind"


def half_writer(fdopen, error):
    """os.fdopen whose file writes half of what it is given, then raises ``error``."""
    class HalfWriter:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def fileno(self):
            return self.f.fileno()

        def write(self, data):
            self.f.write(data[:len(data) // 2])
            self.f.flush()
            raise error

    return lambda fd, *args, **kwargs: HalfWriter(fdopen(fd, *args, **kwargs))


def test_a_folder_where_the_file_goes_is_named_not_the_temporary_file(tmp_path, monkeypatch):
    from scratchnn.errors import os_error_message

    path = tmp_path / "metrics.csv"
    path.mkdir()  # train --resume said '.metrics.csv.15_k8rp1.tmp: Is a directory'
    with pytest.raises(IsADirectoryError) as caught:
        atomic_write_bytes(path, NEW)
    assert os_error_message(caught.value).startswith(f"{path}: a folder is in the way of the file: move or rename")
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.csv"] and path.is_dir()
    # a folder made there after the check: the rename's error names the file too
    record_calls(monkeypatch, "replace", IsADirectoryError(errno.EISDIR, "Is a directory", str(tmp_path / ".x.tmp")))
    with pytest.raises(IsADirectoryError) as caught:
        atomic_write_bytes(tmp_path / "model.safetensors", NEW)
    assert caught.value.filename == str(tmp_path / "model.safetensors")


def test_a_folder_that_refuses_fsync_is_not_an_error(tmp_path, monkeypatch):
    # some filesystems answer fsync on a folder with EINVAL: the file is written all the same
    record_calls(monkeypatch, "fsync folder", OSError(errno.EINVAL, "Invalid argument"))
    assert atomic_write_bytes(tmp_path / "a.bin", NEW).read_bytes() == NEW


@pytest.mark.parametrize("content, message", [
    (None, "no such file; give a search space"),
    ("folder", "a folder, not a file; give a search space"),
    (b"lr = {low = 0.1, high = 1}\n\xff", r"not UTF-8 text \(byte 27\); give a search space$"),
    (b"#" * 1025, "over 1 KiB, too big for a search space, which is a few lines"),
])
def test_read_small_text_refuses_what_cannot_be_a_small_text_file_in_one_line(tmp_path, content, message):
    path = tmp_path / "space.toml"
    if content == "folder":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=message) as raised:
        read_small_text(path, 1024, "a search space")
    assert str(raised.value).startswith(str(path)) and "\n" not in str(raised.value)


def test_read_small_text_reads_no_more_than_its_limit_of_a_huge_file(tmp_path):
    huge = tmp_path / "huge.toml"
    with huge.open("wb") as f:
        f.truncate(2**32)  # sparse: 4 GB that cost no disk
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError, match="over 64 KiB"):
            read_small_text(huge, 64 * 1024, "a search space")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024


def test_a_pipe_or_a_device_is_refused_before_it_is_read(tmp_path):
    """A named pipe nobody writes to made open() wait for ever (a run folder's table as one hung
    the doctor and the page's Runs list); /dev/zero is endless."""
    os.mkfifo(tmp_path / "pipe")
    for path in [tmp_path / "pipe", *(["/dev/zero"] if os.path.exists("/dev/zero") else [])]:
        with pytest.raises(ConfigError, match=r"a pipe, device or socket, not a file; give a search space$"):
            read_small_text(path, 64 * 1024, "a search space")
    with pytest.raises(IsADirectoryError):
        read_at_most(tmp_path, 10)


def test_read_small_text_reads_a_file_of_exactly_its_limit(tmp_path):
    (tmp_path / "space.toml").write_text("lr = {low = 1e-4, high = 0.1}  # é\n", encoding="utf-8")
    size = (tmp_path / "space.toml").stat().st_size
    assert read_small_text(tmp_path / "space.toml", size, "a search space") == "lr = {low = 1e-4, high = 0.1}  # é\n"


def test_why_unreadable_says_the_same_words_for_every_reader(tmp_path):
    """Configs, data files, model files, run tables and photos all explain a failed open alike."""
    from scratchnn.data.idx import read_idx
    from scratchnn.doctor.signals import read_metrics_csv
    from scratchnn.io import read_tensors
    from scratchnn.photos.preprocess import read_image

    for error, words in [(FileNotFoundError(errno.ENOENT, "No such file or directory"), "no such file"),
                         (IsADirectoryError(errno.EISDIR, "Is a directory"), "a folder, not a file"),
                         (OSError(errno.EIO, "Input/output error"), "cannot be read (Input/output error)"),
                         # what Windows raises opening a folder (its name given)
                         (PermissionError(errno.EACCES, "Permission denied", str(tmp_path)), "a folder, not a file"),
                         (PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "x")),
                          "cannot be read (Permission denied)")]:
        assert files.why_unreadable(error) == words
    folder = tmp_path / "model.safetensors"
    folder.mkdir()
    config = functools.partial(read_small_text, limit=100, what="a config")
    for read in (read_idx, read_metrics_csv, read_tensors, read_image, config):
        with pytest.raises(ScratchnnError, match=r"^.*: a folder, not a file"):
            read(folder)
        with pytest.raises(ScratchnnError, match=r"^.*: no such file"):
            read(tmp_path / "missing")


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="no mode bits to keep")
def test_a_file_written_over_keeps_its_permissions_and_a_new_one_gets_the_umasks(tmp_path):
    """The CLI audit: a submission made read-only (0o444) came back 0o644 when written again."""
    kept = tmp_path / "submission.csv"
    kept.write_bytes(b"old")
    kept.chmod(0o444)
    atomic_write_bytes(kept, NEW)
    assert kept.read_bytes() == NEW and stat.S_IMODE(kept.stat().st_mode) == 0o444
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(atomic_write_bytes(tmp_path / "new.csv", NEW).stat().st_mode) == 0o666 & ~umask


@pytest.mark.skipif(os.name != "posix", reason="symbolic links")
def test_a_symbolic_link_is_replaced_never_followed(tmp_path):
    """A link planted in a run folder (report.html -> ~/.bashrc) must not send the write elsewhere."""
    target = tmp_path / "elsewhere.txt"
    target.write_bytes(b"keep me")
    link = tmp_path / "report.html"
    link.symlink_to(target)
    atomic_write_bytes(link, NEW)
    assert not link.is_symlink() and link.read_bytes() == NEW and target.read_bytes() == b"keep me"


def test_a_python_without_fchmod_still_writes(tmp_path, monkeypatch):
    monkeypatch.delattr(os, "fchmod")  # Windows before Python 3.13: every save raised AttributeError
    assert atomic_write_bytes(tmp_path / "model.safetensors", NEW).read_bytes() == NEW


def refusing_replace(monkeypatch, refusals: int) -> list:
    """os.replace that raises Windows' PermissionError (WinError 5) the first ``refusals`` times."""
    tries, real_replace = [], os.replace

    def replace(src, dst):
        tries.append(dst)
        if len(tries) <= refusals:
            raise PermissionError(errno.EACCES, "Access is denied", str(src))
        real_replace(src, dst)

    monkeypatch.setattr(files.os, "replace", replace)
    monkeypatch.setattr(files, "REPLACE_WAIT", 0)
    return tries


def test_windows_waits_for_a_program_that_holds_the_file_then_names_it(tmp_path, monkeypatch):
    from scratchnn.errors import os_error_message

    monkeypatch.setattr(files, "WINDOWS", True)
    path = tmp_path / "metrics.csv"
    path.write_bytes(OLD)
    tries = refusing_replace(monkeypatch, 3)  # a virus scan that lets go
    assert atomic_write_bytes(path, NEW).read_bytes() == NEW and len(tries) == 4
    tries = refusing_replace(monkeypatch, 100)  # a spreadsheet that keeps it open
    with pytest.raises(files.FileInUse) as caught:
        atomic_write_bytes(path, OLD)
    assert len(tries) == files.REPLACE_TRIES
    message = os_error_message(caught.value)
    assert str(caught.value) == message
    assert message == (f"{path}: another program has the file open (a spreadsheet, an editor, a virus scan) or it is "
                       "read-only: close that program and try again")
    assert path.read_bytes() == NEW and [p.name for p in tmp_path.iterdir()] == ["metrics.csv"]


def test_elsewhere_a_refused_rename_is_not_tried_again(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "WINDOWS", False)
    tries = refusing_replace(monkeypatch, 100)
    with pytest.raises(PermissionError) as caught:
        atomic_write_bytes(tmp_path / "model.safetensors", NEW)
    assert len(tries) == 1 and not isinstance(caught.value, files.FileInUse)
    assert caught.value.filename == str(tmp_path / "model.safetensors")


def test_text_saved_by_windows_editors_is_read_or_named(tmp_path):
    """Notepad and PowerShell 5 put a BOM before UTF-8 ("not valid TOML (line 1, column 1)") and
    save "Unicode" as UTF-16 ("not UTF-8 text (byte 0)")."""
    from scratchnn.training.config import TrainConfig
    from scratchnn.tune.space import load_space

    text = 'lr = {low = 1e-4, high = 0.1, log = true}  # é\n'
    (tmp_path / "space.toml").write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert read_small_text(tmp_path / "space.toml", 1024, "a search space") == text
    assert "lr" in str(load_space(tmp_path / "space.toml", "mlp"))
    (tmp_path / "config.toml").write_bytes(b"\xef\xbb\xbf" + TrainConfig(epochs=3).to_toml().encode())
    assert TrainConfig.load(tmp_path / "config.toml").epochs == 3
    for encoding in ("utf-16", "utf-16-be"):  # with its BOM, as Windows writes it
        data = text.encode(encoding) if encoding == "utf-16" else b"\xfe\xff" + text.encode(encoding)
        (tmp_path / "space.toml").write_bytes(data)
        with pytest.raises(ConfigError) as refused:
            read_small_text(tmp_path / "space.toml", 1024, "a search space")
        assert str(refused.value) == f"{tmp_path / 'space.toml'}: saved as UTF-16: save it as UTF-8 (it should be a " \
                                     "search space)"
    (tmp_path / "space.toml").write_bytes(b"\xef\xbb\xbfab\xff")
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte 5\)"):  # counted in the file, BOM included
        read_small_text(tmp_path / "space.toml", 1024, "a search space")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
def test_a_device_or_a_pipe_is_refused_not_replaced_directly_or_through_a_link(tmp_path):
    """The fuzz audit: as root, `predict --save /dev/zero` renamed a PNG over /dev/zero, so every
    program reading it got a PNG. A link to one (/dev/stdout is) is refused too."""
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    (tmp_path / "link").symlink_to(pipe)
    for target in (pipe, tmp_path / "link"):
        with pytest.raises(ConfigError, match=r"is not a regular file \(a device, a pipe or a socket\), and writing "
                                              "here would replace it"):
            atomic_write_bytes(target, b"x")
    assert stat.S_ISFIFO(pipe.lstat().st_mode) and (tmp_path / "link").is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "pipe"]  # never /dev/null itself: a regression


def test_a_write_removes_what_killed_writes_of_the_same_file_left_long_ago(tmp_path):
    """The crash audit: SIGKILL mid-write leaves `.NAME.xxxxxxxx.tmp` beside the file (predict
    --submission, io.save: five piled up after ten kills). The next write of that file removes
    those untouched for STALE_WRITE; a live one (recent), another file's, a folder or a link stay."""
    old, recent = tmp_path / ".out.csv.ab_c1234.tmp", tmp_path / ".out.csv.zz99zz99.tmp"
    others = [tmp_path / ".other.csv.ab_c1234.tmp", tmp_path / ".out.csv.ab_c1234.tmp.keep"]
    for path in (old, recent, *others):
        path.write_bytes(b"half a file")
    (tmp_path / ".out.csv.dir12345.tmp").mkdir()
    (tmp_path / ".out.csv.link1234.tmp").symlink_to(tmp_path / ".other.csv.ab_c1234.tmp")
    long_ago = os.stat(old).st_mtime - files.STALE_WRITE - 1
    for path in (old, *others, tmp_path / ".out.csv.dir12345.tmp"):
        os.utime(path, (long_ago, long_ago))
    os.utime(tmp_path / ".out.csv.link1234.tmp", (long_ago, long_ago), follow_symlinks=False)  # the link itself
    atomic_write_bytes(tmp_path / "out.csv", b"ImageId,Label\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["out.csv", recent.name, *(p.name for p in others), ".out.csv.dir12345.tmp", ".out.csv.link1234.tmp"])


def test_a_lock_is_held_while_its_process_may_run(tmp_path):
    """The review: a sweep resumed while a cluster still trained a trial it re-asks deleted the folder
    being written; it now leaves one whose run.lock a live process (or another machine's) holds."""
    import os
    import socket
    import subprocess

    from scratchnn.files import lock_held

    assert not lock_held(tmp_path, "run.lock")
    (tmp_path / "run.lock").write_text(f"{os.getppid()} {socket.gethostname()}\n")
    assert lock_held(tmp_path, "run.lock")
    ended = int(subprocess.run(["python3", "-c", "import os; print(os.getpid())"], capture_output=True,
                               text=True).stdout)
    (tmp_path / "run.lock").write_text(f"{ended} {socket.gethostname()}\n")
    assert not lock_held(tmp_path, "run.lock")
    (tmp_path / "run.lock").write_text("123 another-machine\n")
    assert lock_held(tmp_path, "run.lock")
