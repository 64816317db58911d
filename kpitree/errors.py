"""One error family, so the CLI and the UI can catch every expected failure in one place."""

from __future__ import annotations

from dataclasses import dataclass


class KpiTreeError(Exception):
    """Base of every error the product expects and explains to the user."""


@dataclass(frozen=True)
class Problem:
    """One finding of a check: where it is (file, line, column or node) and what is wrong."""

    message: str
    node: str | None = None
    line: int | None = None
    column: str | None = None
    key: str | None = None
    file: str | None = None
    severity: str = "error"

    def __str__(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.column:
            where.append(f"column {self.column!r}")
        if self.node:
            where.append(f"node {self.node!r}")
        if self.key:
            where.append(f"key {self.key!r}")
        prefix = ", ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message


class ProblemsError(KpiTreeError):
    """Carries every problem found, so a user fixes them all in one pass, not one per run."""

    def __init__(self, problems: list[Problem], what: str = "problems") -> None:
        self.problems = problems
        shown = "\n".join(f"  - {p}" for p in problems[:20])
        more = f"\n  … and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"{len(problems)} {what}:\n{shown}{more}")


class SpecError(ProblemsError):
    """The tree file is not valid."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(problems, "problem(s) in the tree")


class LoadError(KpiTreeError):
    """A data file could not be loaded; the workspace keeps its previous data."""


class QueryError(KpiTreeError):
    """A metric could not be computed on the workspace's data."""


class PeriodError(KpiTreeError):
    """A period string could not be understood."""


def page_failure(exc: BaseException) -> tuple[str, str]:
    """What a page says when it meets an error: a plain sentence with what to do, and the detail a
    developer needs (kept behind an expander, never the first thing a user reads).

    An expected error already explains itself; anything else is a fault of ours, so the sentence
    says the data is safe (loads write to a new table and swap) and what to try.
    """
    import traceback

    detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    if isinstance(exc, KpiTreeError):
        return str(exc), detail
    return (f"This page met an unexpected problem ({type(exc).__name__}) and stopped. Your data and trees are "
            "unchanged. Reload the page or pick another period or node; if it happens again, send the "
            "details below to whoever runs this server."), detail
