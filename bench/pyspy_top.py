"""Top functions of a py-spy raw (collapsed-stack) profile, by own and by total samples.

    .venv/bin/python bench/pyspy_top.py /tmp/hub.pyspy [--top 25] [--process-filter sync]

Each line of a raw profile is `frame;frame;...;frame count`; with `--subprocesses` the
first frame names the process. Own time is where a sample's innermost frame is; total
time counts a function once per sample in which it appears anywhere.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

# Leaf frames of threads that wait (read-ahead queue, heartbeats, sockets): py-spy samples
# them as active when the wait polls; `--exclude-idle` leaves them out.
_IDLE = ("Condition.wait", "EpollSelector.select", "Event.wait", "sleep", "select", "poll")

# "function (path/to/file.py:123)" -> "function (file.py)": lines vary, functions do not.
_FRAME = re.compile(r"^(?P<fn>.*?) \((?P<file>[^():]+)(?::\d+)?\)$")


def _name(frame: str) -> str:
    m = _FRAME.match(frame.strip())
    if m is None:
        return frame.strip()
    path = m.group("file")
    parts = Path(path).parts
    # Keep the package directory for site-packages and the project's own layers.
    short = "/".join(parts[-2:]) if len(parts) >= 2 else path
    return f"{m.group('fn')} ({short})"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("profile")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--process-filter", default="", help="only stacks of such processes")
    parser.add_argument("--exclude-idle", action="store_true", help="leave out waiting threads")
    args = parser.parse_args()
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    processes: Counter[str] = Counter()
    samples = 0
    for line in Path(args.profile).read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        process = frames[0] if frames and frames[0].startswith("process ") else ""
        if args.process_filter and args.process_filter not in process:
            continue
        names = [_name(f) for f in frames if not f.startswith(("process ", "thread "))]
        if not names or (args.exclude_idle and names[-1].split(" (")[0] in _IDLE):
            continue
        samples += count
        processes[process[:90]] += count
        own[names[-1]] += count
        for name in set(names):
            total[name] += count
    print(f"{samples:,} samples")
    for process, n in processes.most_common(8):
        print(f"  {n / max(samples, 1):6.1%}  {process}")
    print("\nown time")
    for name, n in own.most_common(args.top):
        print(f"  {n / samples:6.1%}  {name}")
    print("\ntotal time")
    for name, n in total.most_common(args.top):
        print(f"  {n / samples:6.1%}  {name}")


if __name__ == "__main__":
    main()
