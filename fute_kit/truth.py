"""The truth a ranking is judged against: a CSV with columns ``target,candidate,score``.

For intermediate-task selection the transfer gain of each source (candidate) on each target; for
prompt selection each prompt's real accuracy on the target dataset (``fute measure`` writes it).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path

from fute_kit.atomic import atomic_write_text
from fute_kit.errors import DataError


def read_truth(path: str | Path, column: str = "score") -> dict[str, dict[str, float]]:
    """``target -> candidate -> score`` from a CSV with columns target, candidate, score.

    ``column`` reads another column as the score: `fute transfer`'s ``accuracy_after`` ranks sources exactly as
    its gains do, and is what regret (Poth et al. 2021: the loss against the best source's accuracy) is taken of.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"truth file {path} does not exist (a CSV with columns target,candidate,score)")
    with open(path, newline="", encoding="utf-8-sig") as handle:  # -sig: spreadsheets often write a BOM
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in ("target", "candidate", column) if c not in columns]
        if missing:
            raise DataError(
                f"truth file {path}: missing column(s) {', '.join(missing)}; found {', '.join(columns) or 'none'} "
                f"(the header must hold target,candidate,{column})"
            )
        truth: dict[str, dict[str, float]] = {}
        for line, row in enumerate(reader, start=2):
            row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
            target, candidate = row["target"], row["candidate"]
            if not target or not candidate:
                raise DataError(f"truth file {path}, line {line}: empty target or candidate")
            try:
                score = float(row[column])
            except ValueError:
                raise DataError(f"truth file {path}, line {line}: {column} {row[column]!r} is not a number") from None
            if not math.isfinite(score):
                raise DataError(f"truth file {path}, line {line}: {column} {row[column]!r} is not finite")
            if candidate in truth.setdefault(target, {}):
                raise DataError(f"truth file {path}, line {line}: {target!r} / {candidate!r} is given twice")
            truth[target][candidate] = score
    if not truth:
        raise DataError(f"truth file {path} has a header but no rows")
    return truth


def truth_columns(path: str | Path) -> list[str]:
    """The column names of a truth file's header (none for a missing or empty file)."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return [c.strip() for c in next(csv.reader(handle), [])]


def write_truth(rows: Sequence[tuple[str, str, float]], path: str | Path, append: bool = False) -> Path:
    """Write ``target,candidate,score`` rows; with ``append``, keep the file's other rows."""
    path = Path(path)
    existing: list[tuple[str, str, float]] = []
    if append and path.exists():
        replaced = {(t, c) for t, c, _ in rows}
        existing = [
            (t, c, s) for t, scores in read_truth(path).items() for c, s in scores.items() if (t, c) not in replaced
        ]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["target", "candidate", "score"])
    writer.writerows((t, c, repr(float(s))) for t, c, s in [*existing, *rows])
    atomic_write_text(path, buffer.getvalue())
    return path
