"""Entry point: parse the subcommand, run it, turn scratchnn errors into one line and exit 1."""
from __future__ import annotations

import argparse
import difflib
import os
import signal
import sys
import threading

from .. import __version__
from ..errors import OutputClosed, ScratchnnError, one_line, os_error_message
from .config_flags import suggest_flag
from .console import plain_output
from .interrupts import INTERRUPTED
from . import (doctor_cmd, interrupts, evaluate_cmd, explain_cmd, gradcheck_cmd, lr_find_cmd, predict_cmd, report_cmd,
               serve_cmd, sweep_cmd, train_cmd)

COMMANDS = (train_cmd, lr_find_cmd, sweep_cmd, evaluate_cmd, predict_cmd, explain_cmd, report_cmd, doctor_cmd,
            gradcheck_cmd, serve_cmd)


class CommandListFormatter(argparse.HelpFormatter):
    """argparse's formatter, leaving room for the command names in the list (argparse counts
    their indent two columns short and wraps the longest name onto a line of its own)."""

    def add_argument(self, action):
        super().add_argument(action)
        if isinstance(action, argparse._SubParsersAction):
            self._action_max_length += 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scratchnn", formatter_class=CommandListFormatter,
        description="A neural network written from scratch in NumPy that learns handwritten digits.",
        epilog="Run 'scratchnn COMMAND --help' for the options of one command.")
    parser.add_argument("--version", action="version", version=f"scratchnn {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def parse(argv: list[str] | None) -> argparse.Namespace:
    """Parse; a flag the command does not know gets that command's usage and the nearest flag."""
    parser = build_parser()
    argv = [home_expanded(token) for token in (sys.argv[1:] if argv is None else argv)]
    if not argv:  # a bare `scratchnn`: the list of commands, not only "COMMAND is required"
        parser.print_help(sys.stderr)
        parser.exit(2)
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if not argv[0].startswith("-") and argv[0] not in (names := list(commands.choices)):
        near = difflib.get_close_matches(argv[0], names, n=1, cutoff=0.6)
        parser.error(f"unknown command {argv[0]!r}" + (f"; did you mean {near[0]!r}?" if near else "")
                     + f" (the commands: {', '.join(names)})")
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        command = commands.choices[args.command]
        listed = next((a for a in command._actions if not a.option_strings and a.nargs in ("+", "*")), None)
        if listed is not None and not any(token.startswith("-") for token in unknown):
            # more of a list after an option (`predict RUN --tta 8 photo.png`): argparse takes a
            # positional list in one piece, so the rest came back unknown
            setattr(args, listed.dest, [*(getattr(args, listed.dest) or []), *unknown])
            return args
        hint = suggest_flag(command, unknown[0], commands.choices)
        command.error(f"unrecognized arguments: {' '.join(unknown)}{hint}")
    return args


def home_expanded(token: str) -> str:
    """A leading ``~`` of an argument, or of a flag's ``=value``, as the home folder. The shell
    expands ``~`` only at the start of a word it does not quote, so ``--out=~/runs/a`` and
    ``--out '~/runs/a'`` reached us as is and made a folder named ``~`` (one ``rm -rf ~`` away from
    deleting the home folder).

    >>> home_expanded("--out=~/runs/a") == "--out=" + os.path.expanduser("~/runs/a")
    True
    >>> home_expanded("a~b"), home_expanded("--seeds=0,1")
    ('a~b', '--seeds=0,1')
    """
    flag, equals, value = token.partition("=") if token.startswith("--") else ("", "", token)
    return flag + equals + os.path.expanduser(value) if value.startswith("~") else token


def console() -> None:
    """The ``scratchnn`` program: ``main()``, and a command interrupted by Ctrl+C or SIGTERM, once
    it has kept what it could and said so, ends *by that signal* (cli/interrupts.py)."""
    interrupts.stopped_by = signal.SIGINT
    code = main()
    if code == INTERRUPTED and os.name == "posix":
        interrupts.end_by_signal()
    sys.exit(code)


def main(argv: list[str] | None = None) -> int:
    for name in ("stdout", "stderr"):  # started with it closed (`>&-`): Python gives None, and every print raised
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))
    plain_output(sys.stdout, sys.stderr)  # Σ, ∂, ‖ where output is not UTF-8 (Windows' redirected output: cp1252)
    args = parse(argv)
    on_main = threading.current_thread() is threading.main_thread()  # (serve's uvicorn installs its own handlers)
    before = {signum: signal.signal(signum, interrupts.terminated) for signum in interrupts.STOPPING} if on_main else {}
    try:
        return _run(args)
    finally:  # a program that calls main() keeps its own SIGTERM handling afterwards
        for signum, handler in before.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)


def _run(args: argparse.Namespace) -> int:
    """The command, its scratchnn errors, interruptions and refused files turned into one line and an exit code."""
    try:
        return args.run(args) or 0
    except ScratchnnError as error:  # one line, a newline in a folder's name too (the review)
        print(f"scratchnn {args.command}: error: {one_line(error)}", file=sys.stderr)
        return getattr(error, "exit_code", 1)
    except KeyboardInterrupt as error:  # RunInterrupted says what was kept and how to continue
        print(f"scratchnn {args.command}: interrupted" + (f"; {one_line(error)}" if str(error) else ""),
              file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError as error:  # output piped into `head` or similar, which stopped reading
        # NOTE: point stdout at devnull so Python's own flush at exit does not raise again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        cut_short = args.command in ("train", "sweep", "lr-find") and not getattr(args, "print_config", False)
        if cut_short:  # work was cut short: say so, and what a run keeps
            kept = f"; {one_line(error.kept)}" if isinstance(error, OutputClosed) else ""
            try:
                print(f"scratchnn {args.command}: stopped: its output was closed (piped into a program that quit, "
                      f"such as head); send it to a file or through tee to keep it running{kept}", file=sys.stderr)
            except OSError:  # stderr went into the same pipe (2>&1 | head)
                pass
        return 1
    except OSError as error:  # a file or folder the system refused (no such folder, no permission, disk full)
        print(f"scratchnn {args.command}: error: {os_error_message(error)}", file=sys.stderr)
        return 1
    except MemoryError as error:  # the memory check before training is a lower bound: a run near it may not fit
        print(f"scratchnn {args.command}: error: {out_of_memory(args, error)}", file=sys.stderr)
        return 1


def out_of_memory(args: argparse.Namespace, error: MemoryError) -> str:
    """A MemoryError in one line, with what to lower for this command.

    >>> out_of_memory(argparse.Namespace(command="predict", tta=8), MemoryError())
    'out of memory: use a smaller --tta, or close other programs'
    >>> out_of_memory(argparse.Namespace(command="evaluate", tta=1), MemoryError())
    'out of memory: close other programs, or use a machine with more memory'
    """
    what = " ".join(str(error).split())  # NumPy's names the array: "Unable to allocate 1.9 GiB for an array ..."
    if getattr(args, "resume", None):
        advice = ("close other programs and resume it again, or start it again smaller (--batch-size, --hidden, "
                  "--conv)")
    elif args.command in ("train", "lr-find", "sweep"):
        advice = "use a smaller --batch-size, smaller layers (--hidden, --conv) or fewer images (--train-size)"
        if args.command == "train":  # the doctor's sampled batch and the threads' copies too
            advice += "; --threads 1 and --doctor off need less"
    elif args.command in ("predict", "evaluate", "serve") and (getattr(args, "tta", 1) or 1) > 1:
        advice = "use a smaller --tta, or close other programs"  # (told with no --tta given: the resource audit)
    else:
        advice = "close other programs, or use a machine with more memory"
    return f"out of memory{f' ({what})' if what else ''}: {advice}"


if __name__ == "__main__":  # python -m scratchnn.cli.main, as python -m scratchnn
    console()
