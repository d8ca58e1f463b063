"""README.md as a reader sees it: every code block closed (an unclosed one swallowed the training
doctor's section once), and its Python example runs as written."""
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def blocks(text: str) -> list[tuple[int, int, str]]:
    """(first line, last line, info string) of each fenced block, 1-based; a fence left open
    ends at the last line."""
    found, start, info = [], None, ""
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        if line.startswith("```"):
            if start is None:
                start, info = number, line[3:].strip()
            else:
                found.append((start, number, info))
                start = None
    if start is not None:
        found.append((start, len(lines), info))
    return found


def test_every_code_block_is_closed_and_no_heading_falls_inside_one():
    lines = README.read_text().splitlines()
    fences = [number for number, line in enumerate(lines, 1) if line.startswith("```")]
    assert len(fences) % 2 == 0, f"a code block opened at line {fences[-1]} is never closed"
    for start, end, info in blocks(README.read_text()):
        assert not lines[end - 1][3:].strip(), f"line {end}: a closing fence carries {lines[end - 1]!r}"
        inside = [n for n in range(start + 1, end) if re.match(r"#{2,4} [A-Z]", lines[n - 1])]
        assert not inside, f"headings inside the {info or 'plain'} block at line {start}: lines {inside}"


def test_the_python_example_runs_as_written(shared_dir):
    text = README.read_text()
    example = text.split("**In Python.**", 1)[1]
    start, end, info = blocks(example)[0]
    assert info == "python"
    code = "\n".join(example.splitlines()[start:end - 1])
    scope = {}
    exec(compile(code.replace("../shared", str(shared_dir)), "README.md", "exec"), scope)
    assert len(scope["history"]) == 500 and scope["history"][-1].dev_accuracy > 0.8  # the tutorial's ~85%
    start, end, info = blocks(example)[1]  # the doctor on a Python fit, in the same session
    assert info == "python"
    printed = []
    scope["print"] = printed.append
    exec(compile("\n".join(example.splitlines()[start:end - 1]), "README.md", "exec"), scope)
    assert printed[0] == ("[symmetric-units] error: 0.Dense: its units are identical (spread 0 across units) "
                          "(iteration 0)"), printed


def test_set_up_holds_two_commands_and_ci_runs_the_second_word_for_word():
    """README's set-up section: one command installs and trains, one installs and runs the tests;
    .ci/run runs that test command as written (it once ran a copy, after its own venv steps)."""
    text = README.read_text()
    section = text.split("## Set up on a fresh machine", 1)[1].split("\n## ", 1)[0]
    lines = section.splitlines()
    commands = [lines[start:end - 1] for start, end, info in blocks(section) if info == "sh"]
    assert len(commands) == 2 and all(len(command) == 1 for command in commands), commands
    train, tests = commands[0][0], commands[1][0]
    assert train.startswith("python3 -m venv .venv && ") and "scratchnn train" in train
    ci = (README.parent / ".ci" / "run").read_text().splitlines()
    assert tests in ci and "pytest" in tests, f"{tests!r} is not a line of .ci/run"
