"""Answer parser speed on long adversarial replies (a server's reply has no length cap).

Times ``parse_box`` on replies built to make a backtracking parser super-linear, at 40 KB and 1 MB,
best of 3. The parser is linear when the 1 MB time is about 25x the 40 KB time. Usage:

    PYTHONPATH=src .venv/bin/python benchmarks/parser_speed.py
"""

from __future__ import annotations

import time

from r1track.parsing import parse_box

REPLIES = {
    "spaces inside a code fence": lambda n: "```\nthe box is" + " " * n + "[1, 2, 3, 4]\n```",
    "words inside an open fence": lambda n: "```json\n" + "a " * (n // 2),
    "digits after a bracket": lambda n: "[" + "1" * n + " [1,2,3,4]",
    "unclosed 3-number lists": lambda n: "[1, 2, 3" * (n // 8) + "[9,9,9,9]",
    "bbox keys without lists": lambda n: '"bbox_2d": [' * (n // 12),
}


def best_of(text: str, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        parse_box(text)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    print("| reply | 40 KB | 1 MB |")
    print("| --- | --- | --- |")
    for name, make in REPLIES.items():
        small, large = best_of(make(40_000)), best_of(make(1_000_000))
        print(f"| {name} | {small * 1e3:.1f} ms | {large * 1e3:.1f} ms |")


if __name__ == "__main__":
    main()
