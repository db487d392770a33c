"""Summarize a ``py-spy record --format raw`` profile (collapsed stacks): where the API's time goes.

    .venv/bin/python bench/profile_summary.py PROFILE.txt [--top 25]

Prints the functions with the most samples on top of the stack ("self") and on the stack at all
("inclusive"), as percentages of all samples. py-spy sees Python frames only: time spent in C
(uvloop, httptools, asyncpg's protocol, socket syscalls) is charged to the Python frame that called it.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"(?P<function>.*?) \((?P<path>.*?):\d+\)$")
# Frames on every request's stack (the process's entry point and the server's run loop): not news.
_BORING = ("(click/", "(<frozen runpy>)", "(seeonline/cli/", "(seeonline/__main__.py)", "(uvicorn/server.py)",
           "(uvicorn/_compat.py)", "(stdlib/threading.py)")  # fmt: skip


def short(frame: str) -> str:
    """``function (package/module.py)`` without the site-packages or src prefix."""
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = match["path"]
    for marker in ("site-packages/", "/src/", "/lib/python3."):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "/lib/python3.":
                path = "stdlib/" + path.split("/", 1)[-1]
            break
    return f"{match['function']} ({path})"


def summarize(path: Path, top: int = 25) -> list[str]:
    """The report's lines."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = [short(frame) for frame in stack.split(";")]
        own[frames[-1]] += samples
        for frame in set(frames):
            if not frame.startswith("Runner.run ") and not any(boring in frame for boring in _BORING):
                inclusive[frame] += samples
    if not total:
        return [f"{path}: no samples"]
    lines = [f"{path}: {total} samples", "  self:"]
    lines += [f"    {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    lines.append("  inclusive (without the entry point and the event loop):")
    lines += [f"    {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    return lines


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    print("\n".join(summarize(args.profile, args.top)))


if __name__ == "__main__":
    main()
