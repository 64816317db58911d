"""The KPI tree spec: YAML in two stages (raw mapping with line numbers → checked frozen Tree).

Validation follows seed 003 ("KPI Tree Builder") — every metric has an owner, a numeric target
and a connection to the level above — plus the technical rules (unique ids, no cycles, known
metrics and children, formulas over children only). Every problem names the node, the key and
the YAML line, and all problems are reported at once.
"""

from __future__ import annotations

import ast
import math
import re
import reprlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from .custom import UNITS, CustomMeasure, check_measure, measure_from_raw, register_measure
from .errors import KpiTreeError, Problem, SpecError
from .metrics import CATALOGUE, Kind, Profile
from .periods import Grain, Period
from .schema import TABLES

LEVELS = {"north_star": 1, "driver": 2, "core": 3, "operational": 4, "lever": 5}
LEVEL_NAMES = {v: k for k, v in LEVELS.items()}
REVIEWS = ("daily", "weekly", "monthly", "quarterly")
DIRECTIONS = ("higher", "lower")
NODE_KEYS = (
    "id", "label", "level", "metric", "filter", "unit", "direction", "owner", "review", "target",
    "thresholds", "dimensions", "children", "formula", "description",
)
TREE_KEYS = ("name", "description", "grain", "dimensions", "nodes", "version")
TARGET_KEYS = ("value", "by_period", "annual", "quarterly", "monthly", "weekly", "day90", "month12", "suggested")
# An owner still to be named: a role placeholder such as "Head of Sales — to assign" (a suggested tree
# has these where its data names nobody). Validation warns instead of failing, and the tree page
# lists them, so a tree can be used at once while seed 003's "every number has an owner" stays visible.
TO_ASSIGN = "to assign"
# Table → the columns a workspace has (`workspace_columns`): what drill dimensions are checked against.
WorkspaceColumns = Mapping[str, Collection[str]]
_ID_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")  # always with fullmatch: `$` lets a trailing newline through
# Limits a tree file must keep: far above any real tree (the largest template has ~60 nodes), low
# enough that a hostile file is refused in milliseconds instead of pinning the server (PRODUCT: a
# file a user can upload never harms the server). Every refusal names the file, line and node.
MAX_TREE_BYTES = 512 * 1024
MAX_NODES = 500
MAX_TREE_DEPTH = 12  # parent → child steps from the north star (levels allow 5; drafts may be deeper)
MAX_YAML_NESTING = 24  # mappings and lists inside each other in the file
MAX_YAML_EVENTS = 200_000
MAX_TEXT = 300  # characters of a tree name, a filter value or column
MAX_LABEL = 120  # characters of a node's label or owner: drawn in a box, and the layout's wrapping
#                 grows much faster than the text (40 boxes: 0.04 s at 120 characters, 1.1 s at 300)
MAX_DESCRIPTION = 5000
MAX_FORMULA_CHARS = 1000
MAX_FORMULA_TERMS = 100
MAX_FORMULA_NESTING = 20
MAX_FILTER_VALUES = 200
MAX_PERIOD_TARGETS = 1200
_SHOW = reprlib.Repr()
_SHOW.maxstring = _SHOW.maxother = 60
_SHOW.maxlist = _SHOW.maxdict = _SHOW.maxtuple = 6
_SHOW.maxlevel = 2


def _show(value: Any) -> str:
    """A value as a message quotes it: short, whatever the file holds (never a megabyte of repr)."""
    return _SHOW.repr(value)
_DAYS_PER_GRAIN = {Grain.WEEK: 7.0, Grain.MONTH: 365.25 / 12, Grain.QUARTER: 365.25 / 4, Grain.YEAR: 365.25}
_GRAIN_KEYS = {"weekly": Grain.WEEK, "monthly": Grain.MONTH, "quarterly": Grain.QUARTER, "annual": Grain.YEAR}


def _combine_months(values: list[float], covered: list[float], rollup: str) -> float | None:
    """Monthly ratio targets over the fractions of each month a period covers (see `Target._from_months`)."""
    if rollup == "compound":
        out = 1.0
        for v, f in zip(values, covered, strict=True):
            if v <= 0:
                return None
            out *= v ** f
        return out
    if rollup == "churn":
        kept = 1.0
        for v, f in zip(values, covered, strict=True):
            if v >= 1:
                return 1.0
            kept *= (1.0 - v) ** f
        return 1.0 - kept
    if rollup == "sum":
        return sum(v * f for v, f in zip(values, covered, strict=True))
    return sum(v * f for v, f in zip(values, covered, strict=True)) / sum(covered)


@dataclass(frozen=True)
class Target:
    """A node's target: one number, or per grain, or per period; 90-day and 12-month goals."""

    value: float | None = None  # per month for flows, the level itself for stocks and ratios
    by_period: tuple[tuple[str, float], ...] = ()
    per_grain: tuple[tuple[str, float], ...] = ()  # ("annual", 1.2e6), ("monthly", 1e5) …
    day90: float | None = None
    month12: float | None = None
    # Set when the numbers were suggested from the workspace's own history, not typed by a person:
    # the rule in words ("trailing 6 months, +2.1 %/month"), or why there is no number yet ("only 2
    # months of history"). Any edit of the target drops it (see `targets.with_fields`).
    suggested: str | None = None

    @property
    def is_set(self) -> bool:
        return any(v is not None for v in (self.value, self.day90, self.month12)) or bool(
            self.by_period or self.per_grain
        )

    def for_period(self, period: Period, kind: Kind, rollup: str = "mean") -> float | None:
        """The target for this period; flows are scaled to the period's length.

        `rollup` says how a ratio's monthly targets make a longer or shorter period's (the
        metric's `Metric.rollup`): a quarter of 100.5 % monthly NRR is 101.5 %, not 100.5 %.
        """
        exact = dict(self.by_period).get(period.key)
        if exact is not None:
            return exact
        rolled = self._from_months(period, kind, rollup)
        if rolled is not None:
            return rolled
        grains = {_GRAIN_KEYS[k]: v for k, v in self.per_grain}
        if kind is not Kind.FLOW:
            base = grains.get(period.grain, self.value if self.value is not None else self.day90)
            if base is None and grains:
                base = next(iter(grains.values()))
            return base
        if period.grain in grains:
            return grains[period.grain]
        if grains:
            grain, value = next(iter(grains.items()))
            return value * period.days / _DAYS_PER_GRAIN[grain]
        base = self.value if self.value is not None else self.day90
        if base is None:
            return None
        return base * period.days / _DAYS_PER_GRAIN[Grain.MONTH]

    def _from_months(self, period: Period, kind: Kind, rollup: str = "mean") -> float | None:
        """Monthly targets rolled up to quarters and years, or down to weeks.

        Flows add up their months' targets pro-rated by overlapping days; stocks take the month
        that holds the period's last day; ratios combine the months they overlap, each weighted by
        the fraction f of it that the period covers: mean (Σ f·x / Σ f), compound (Π x^f),
        churn (1 − Π (1 − x)^f) or sum (Σ f·x). Only when every overlapped month has a target,
        so a partial plan never produces a partial number.
        """
        if period.grain is Grain.MONTH or not self.by_period:
            return None
        from .periods import period_containing

        monthly = dict(self.by_period)
        months = []
        p = period_containing(period.start, Grain.MONTH)
        while p.start <= period.end:
            months.append(p)
            p = p.shift(1)
        if any(m.key not in monthly for m in months):
            return None
        if kind is Kind.STOCK:
            return monthly[months[-1].key]
        covered = [((min(m.end, period.end) - max(m.start, period.start)).days + 1) / m.days for m in months]
        values = [monthly[m.key] for m in months]
        if kind is Kind.RATIO:
            return _combine_months(values, covered, rollup)
        return sum(v * f for v, f in zip(values, covered, strict=True))

    def to_yaml(self) -> Any:
        if not (self.by_period or self.per_grain or self.day90 is not None or self.month12 is not None
                or self.suggested):
            return self.value
        out: dict[str, Any] = {}
        if self.suggested:
            out["suggested"] = self.suggested
        if self.value is not None:
            out["value"] = self.value
        for k, v in self.per_grain:
            out[k] = v
        if self.by_period:
            out["by_period"] = dict(self.by_period)
        if self.day90 is not None:
            out["day90"] = self.day90
        if self.month12 is not None:
            out["month12"] = self.month12
        return out


@dataclass(frozen=True)
class Node:
    id: str
    label: str
    level: int
    metric: str
    owner: str
    target: Target = field(default_factory=Target)
    unit: str | None = None
    direction: str | None = None
    review: str = "monthly"
    amber: float | None = None  # relative band around the target that is amber, e.g. 0.05
    dimensions: tuple[str, ...] = ()
    children: tuple[str, ...] = ()
    formula: str | None = None
    filter: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    description: str = ""
    line: int | None = None
    custom: CustomMeasure | None = None  # the measure as written when `metric:` is a mapping
    # `dimensions: []` written out: nothing in the workspace splits this number (its dimension
    # columns are empty), so it does not fall back to the tree's dimensions either
    no_drill: bool = False

    @property
    def level_name(self) -> str:
        return LEVEL_NAMES.get(self.level, f"level {self.level}")

    @property
    def better(self) -> str:
        m = CATALOGUE.get(self.metric)
        return self.direction or (m.direction if m else "higher")

    @property
    def shown_unit(self) -> str:
        m = CATALOGUE.get(self.metric)
        return self.unit or (m.unit if m else "count")

    @property
    def is_exact(self) -> bool:
        """True when the link to the children is arithmetic (a formula), not influence."""
        return self.formula is not None

    @property
    def owner_missing(self) -> bool:
        """True while nobody is named: no owner, or a role placeholder such as "CFO — to assign"."""
        return owner_missing(self.owner)


def owner_missing(owner: str | None) -> bool:
    """True for an empty owner or a placeholder ending in "to assign"."""
    text = (owner or "").strip().rstrip(".)").lower()
    return not text or text.endswith(TO_ASSIGN)


@dataclass(frozen=True)
class Tree:
    name: str
    nodes: tuple[Node, ...]
    grain: str = "month"
    dimensions: tuple[str, ...] = ("owner", "segment", "channel")
    description: str = ""
    source: str | None = None

    def node(self, node_id: str) -> Node:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(f"no node {node_id!r} in tree {self.name!r} (nodes: {', '.join(n.id for n in self.nodes)})")

    @property
    def root(self) -> Node:
        children = {c for n in self.nodes for c in n.children}
        return next(n for n in self.nodes if n.id not in children)

    def parent_of(self, node_id: str) -> Node | None:
        return next((n for n in self.nodes if node_id in n.children), None)

    def walk(self) -> list[Node]:
        """Nodes depth first from the root, children in their listed order."""
        by_id = {n.id: n for n in self.nodes}
        out: list[Node] = []
        seen: set[str] = set()
        stack = [self.root.id]  # a stack, not recursion: a deep draft never hits the recursion limit
        while stack:
            nid = stack.pop()
            if nid in seen:
                continue
            seen.add(nid)
            n = by_id.get(nid) or self.node(nid)
            out.append(n)
            stack.extend(reversed(n.children))
        return out

    def dimensions_for(self, node: Node) -> tuple[str, ...]:
        """The node's own drill dimensions, else the tree's (none for a node marked `dimensions: []`)."""
        if node.dimensions or node.no_drill:
            return node.dimensions
        return self.dimensions


# --- formulas ------------------------------------------------------------------------------

_ALLOWED_OPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.USub, ast.UAdd)


_TERM_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+")


def formula_limits(formula: str) -> str | None:
    """Why a formula is too big to read safely (length, terms, nesting), or None.

    Checked before Python's parser sees the text: 5,000 terms or 300 parentheses make the parser
    and every recursive reader after it (units, attribution) run out of stack.
    """
    if len(formula) > MAX_FORMULA_CHARS:
        return f"the formula is {len(formula):,} characters long; the limit is {MAX_FORMULA_CHARS:,}"
    terms = len(_TERM_RE.findall(formula))
    if terms > MAX_FORMULA_TERMS:
        return f"the formula has {terms:,} terms; the limit is {MAX_FORMULA_TERMS}"
    depth = deepest = 0
    for ch in formula:
        depth += ch == "("
        depth -= ch == ")"
        deepest = max(deepest, depth)
    signs = max((m.count("-") + m.count("+") for m in re.findall(r"[-+\s]+", formula)), default=0)
    if deepest > MAX_FORMULA_NESTING or signs > MAX_FORMULA_NESTING:
        return f"the formula is nested more than {MAX_FORMULA_NESTING} levels deep (parentheses or signs)"
    return None


def _parse_formula(formula: str) -> ast.Expression:
    """The formula's expression tree; ValueError (never RecursionError) for what cannot be read."""
    too_big = formula_limits(formula)
    if too_big:
        raise ValueError(too_big)
    try:
        return ast.parse(formula_expression(formula), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not a formula ({exc.msg})") from None
    except (RecursionError, MemoryError, ValueError):
        raise ValueError("the formula is too complex to read") from None


def formula_names(formula: str) -> set[str]:
    """Names a formula uses; raises ValueError on anything but + − × ÷, numbers and names."""
    tree = _parse_formula(formula)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Load, *_ALLOWED_OPS)):
            continue
        elif (isinstance(node, ast.Constant) and isinstance(node.value, (int, float))
              and not isinstance(node.value, bool)):  # the attribution refuses True/False as numbers
            continue
        else:
            raise ValueError(f"{type(node).__name__} is not allowed (use + - * / numbers and child ids)")
    return names


# Units as dimensions: counts, percents and ratios are plain numbers when multiplied (closed deals
# × win rate × deal size is money), but adding needs the same kind of number on both sides.
_UNIT_DIMS: dict[str, dict[str, int]] = {
    "money": {"money": 1}, "money_per_day": {"money": 1, "day": -1}, "days": {"day": 1}, "hours": {"hour": 1},
    "months": {"month": 1}, "count": {}, "percent": {}, "ratio": {},
}
_ADD_CLASS = {"percent": "fraction", "ratio": "fraction"}


@dataclass(frozen=True)
class _Dim:
    dims: tuple[tuple[str, int], ...]
    cls: str | None  # what may be added to it: a unit name, "fraction", "scalar"; None for constants
    text: str

    @property
    def unit_name(self) -> str:
        if self.cls in (None, "scalar"):
            return _dims_name(self.dims)
        return {"fraction": "percent"}.get(self.cls, self.cls)


def _dims_name(dims: tuple[tuple[str, int], ...]) -> str:
    if not dims:
        return "a plain number"
    for unit, d in _UNIT_DIMS.items():
        if tuple(sorted(d.items())) == dims and unit not in ("percent", "ratio"):
            return unit
    return " × ".join(f"{k}^{v}" if v != 1 else k for k, v in dims) or "a plain number"


def _combine(a: dict[str, int], b: dict[str, int], sign: int) -> tuple[tuple[str, int], ...]:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0) + sign * v
    return tuple(sorted((k, v) for k, v in out.items() if v))


def formula_unit_problems(formula: str, units: dict[str, str], node_unit: str | None) -> list[str]:
    """Unit mistakes in a formula: adding money to a percent, or a result in another unit than the node's.

    `units` maps child id → unit; children with an unknown unit are not checked.
    """
    try:
        tree = _parse_formula(formula)
    except ValueError:
        return []  # `formula_names` reports why
    problems: list[str] = []

    def visit(node: ast.AST) -> _Dim | None:
        if isinstance(node, ast.Expression):
            return visit(node.body)
        if isinstance(node, ast.Constant):
            return _Dim((), None, repr(node.value))
        if isinstance(node, ast.Name):
            unit = units.get(node.id)
            if unit not in _UNIT_DIMS:
                return None
            return _Dim(tuple(sorted(_UNIT_DIMS[unit].items())), _ADD_CLASS.get(unit, unit), f"{node.id} ({unit})")
        if isinstance(node, ast.UnaryOp):
            return visit(node.operand)
        if isinstance(node, ast.BinOp):
            left, right = visit(node.left), visit(node.right)
            if left is None or right is None:
                return None
            if isinstance(node.op, (ast.Add, ast.Sub)):
                if left.cls is None:
                    return right
                if right.cls is None:
                    return left
                plain = {"count", "fraction", "scalar"}
                same = left.dims == right.dims and (
                    left.cls == right.cls or "scalar" in (left.cls, right.cls) and {left.cls, right.cls} <= plain)
                if not same:
                    verb = "adds" if isinstance(node.op, ast.Add) else "subtracts"
                    problems.append(f"formula {verb} {left.unit_name} and {right.unit_name} "
                                    f"({left.text} {'+' if verb == 'adds' else '-'} {right.text}): only numbers of "
                                    "the same unit add up (money × percent is money, money + percent is an error)")
                    return None
                return left if left.cls != "scalar" else right
            if isinstance(node.op, (ast.Mult, ast.Div)):
                sign = 1 if isinstance(node.op, ast.Mult) else -1
                dims = _combine(dict(left.dims), dict(right.dims), sign)
                if left.cls is None and right.cls is None:
                    return _Dim((), None, "constant")
                if left.cls is None or right.cls is None:
                    keep = right if left.cls is None else left
                    return _Dim(dims, keep.cls, keep.text)
                return _Dim(dims, _dims_name(dims) if dims else "scalar",
                            f"{left.text} {'×' if sign == 1 else '÷'} {right.text}")
        return None

    result = visit(tree)
    if result is not None and result.cls is not None and node_unit in _UNIT_DIMS:
        want = tuple(sorted(_UNIT_DIMS[node_unit].items()))
        if result.dims != want:
            problems.append(f"formula gives {result.unit_name} but the node's unit is {node_unit}")
    return problems


def formula_expression(formula: str) -> str:
    """The right-hand side of `parent = a + b`, or the formula itself."""
    return (formula.split("=", 1)[1] if "=" in formula else formula).strip()


# --- YAML with line numbers ----------------------------------------------------------------


class _LineLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml when present: faster
    """Records the line of every mapping and of each of its keys."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict:
    mapping = loader.construct_mapping(node, deep=True)
    lines = {}
    for key_node, _ in node.value:
        lines[loader.construct_object(key_node)] = key_node.start_mark.line + 1
    mapping["__line__"] = node.start_mark.line + 1
    mapping["__lines__"] = lines
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in ("__line__", "__lines__")}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


# Tags a tree file may spell out; anything else (!!python/…, !!binary, !!set, custom tags) is refused.
_PLAIN_TAGS = {"!", "tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
               "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null", "tag:yaml.org,2002:map",
               "tag:yaml.org,2002:seq"}


def _scan(text: str, source: str | None) -> list[Problem]:
    """Refuses what makes YAML expensive before anything is built: anchors and aliases (a 512-byte
    "billion laughs" expands to gigabytes), deep nesting (recursive construction) and floods of
    values. Reads the event stream only, in linear time and memory."""
    def refuse(msg: str, event: Any = None) -> list[Problem]:
        mark = getattr(event, "start_mark", None)
        return [Problem(msg, line=mark.line + 1 if mark else None, file=source)]

    depth = count = 0
    for event in yaml.parse(text, Loader=_LineLoader):
        count += 1
        if count > MAX_YAML_EVENTS:
            return refuse(f"the file holds more than {MAX_YAML_EVENTS:,} values; a tree file is far smaller", event)
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            return refuse("YAML anchors and aliases (&name, *name) are not allowed in a tree file: write each "
                          "value out in full", event)
        tag = getattr(event, "tag", None)
        if tag is not None and tag not in _PLAIN_TAGS:
            return refuse(f"the YAML tag {_show(tag)} is not allowed in a tree file: write plain text, numbers, "
                          "lists and mappings", event)
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_YAML_NESTING:
                return refuse(f"lists and mappings are nested more than {MAX_YAML_NESTING} deep; a tree file "
                              "needs a handful of levels", event)
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
    return []


def read_yaml(text: str, source: str | None = None) -> tuple[Any, list[Problem]]:
    """The YAML structure with line bookkeeping, or the reasons it is refused (size, aliases, tags,
    nesting, syntax). Never raises: a hostile file gets a sentence, not a traceback."""
    if not isinstance(text, str):
        return None, [Problem("a tree file is text (YAML)", file=source)]
    # characters never outnumber bytes: a huge text is refused without encoding a copy of it
    size = len(text) if len(text) > MAX_TREE_BYTES else len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_TREE_BYTES:
        return None, [Problem(f"the tree file is {size / 1024:,.0f} KB; the limit is {MAX_TREE_BYTES // 1024} KB "
                              "(a tree of hundreds of nodes takes a few dozen)", file=source)]
    if "\x00" in text:
        return None, [Problem("the file contains NUL bytes: it is not a text tree file", file=source)]
    try:
        problems = _scan(text, source)
        if problems:
            return None, problems
        return yaml.load(text, Loader=_LineLoader), []  # noqa: S506 - SafeLoader subclass, checked by _scan
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        return None, [Problem(f"not valid YAML: {getattr(exc, 'problem', None) or exc}", line=line, file=source)]
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. a date 2026-02-30 the YAML reader builds
        return None, [Problem(f"a value cannot be read ({_show(str(exc))}); put dates and odd values in quotes",
                              file=source)]
    except (RecursionError, MemoryError):
        return None, [Problem("the file is too complex to read", file=source)]


def parse_yaml(text: str, source: str | None = None,
               columns: WorkspaceColumns | None = None) -> tuple[Tree | None, list[Problem]]:
    """Parses and validates; returns the tree (None if unusable) and every problem found.

    `columns` (table → its columns in a workspace, e.g. `workspace_columns(engine.profile)`) makes
    drill dimensions be checked against that workspace too: an extra column a user's file brought
    (a deal's `type`, a lead's `industry`) is a valid dimension there, not a typo.

    Never raises: whatever the text holds, the answer is a list of problems naming file, line and
    node (the limits above keep time and memory bounded)."""
    raw, problems = read_yaml(text, source)
    if problems:
        return None, problems
    try:
        return _build(raw, source, columns)
    except (RecursionError, MemoryError):
        return None, [Problem("the tree is too complex to check", file=source)]


def read_tree_text(path: str | Path) -> tuple[str | None, list[Problem]]:
    """A tree file's text, or why it cannot be read (missing, too big, not UTF-8): checked before
    reading, so a huge file is never loaded into memory."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_TREE_BYTES:
            return None, [Problem(f"the tree file is {size / 1024:,.0f} KB; the limit is "
                                  f"{MAX_TREE_BYTES // 1024} KB", file=str(path))]
        return path.read_bytes().decode("utf-8-sig"), []
    except UnicodeDecodeError as exc:
        return None, [Problem(f"the file is not UTF-8 text (byte {exc.start}): save it as UTF-8", file=str(path))]
    except OSError as exc:
        return None, [Problem(f"cannot read tree file: {exc.strerror or exc}", file=str(path))]


def load_tree(path: str | Path) -> Tree:
    """The checked tree in the file; raises SpecError listing every problem (warnings pass)."""
    text, problems = read_tree_text(path)
    if text is None:
        raise SpecError(problems)
    tree, problems = parse_yaml(text, str(path))
    errors = [p for p in problems if p.severity == "error"]
    if errors or tree is None:
        raise SpecError(errors or [Problem("the file holds no usable tree", file=str(path))])
    return tree


def validate_file(path: str | Path) -> list[Problem]:
    text, problems = read_tree_text(path)
    if text is None:
        return problems
    return parse_yaml(text, str(path))[1]


def _num(value: Any) -> float | None:
    """A finite number, else None: NaN, ±inf and integers beyond a float are no target."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def normalise_period_key(key: Any) -> str:
    """A per-period target's key as periods are keyed (`2026-1` → `2026-01`, `2026-q3` → `2026-Q3`);
    raises PeriodError saying how to write one."""
    from .errors import PeriodError
    from .periods import parse_period

    text = str(key).strip()
    if len(text) > 16:
        raise PeriodError(f"invalid period {_show(text)}: write a month 2026-10, a quarter 2026-Q3, "
                          "a week 2026-W41 or a year 2026")
    return parse_period(text).key


def _parse_target(raw: Any, add: Any) -> Target:
    if raw is None:
        return Target()
    if _num(raw) is not None:
        return Target(value=_num(raw))
    if not isinstance(raw, dict):
        add("target must be a number such as 1200000, or a mapping such as "
            f"{{monthly: 100000, by_period: {{2026-10: 95000}}}}; got {_show(_strip(raw))}", "target")
        return Target()
    unknown = [k for k in raw if k not in (*TARGET_KEYS, "__line__", "__lines__")]
    for k in unknown:
        add(f"unknown target key {k!r} (allowed: {', '.join(TARGET_KEYS)})", "target")
    by_period: dict[str, float] = {}
    written = raw.get("by_period") or {}
    if not isinstance(written, dict):
        add("target.by_period is a mapping of period: number, e.g. {2026-10: 95000, 2026-11: 98000}; "
            f"got {_show(_strip(written))}", "target.by_period")
        written = {}
    periods = [k for k in written if k not in ("__line__", "__lines__")]
    if len(periods) > MAX_PERIOD_TARGETS:
        add(f"target.by_period has {len(periods):,} periods; the limit is {MAX_PERIOD_TARGETS}", "target.by_period")
        periods = []
    for key in periods:
        value = written[key]
        try:
            period = normalise_period_key(key)
        except KpiTreeError as exc:
            add(str(exc), "target.by_period")
            continue
        if _num(value) is None:
            add(f"target for {period} must be a number, got {_show(_strip(value))}", "target.by_period")
            continue
        if period in by_period:
            add(f"target.by_period gives {period} twice ({_show(key)} is the same period)", "target.by_period")
            continue
        by_period[period] = _num(value)  # type: ignore[assignment]
    per_grain = []
    for key in _GRAIN_KEYS:
        if key in raw:
            if _num(raw[key]) is None:
                add(f"target.{key} must be a number, got {_show(_strip(raw[key]))}", "target")
            else:
                per_grain.append((key, _num(raw[key])))
    for key in ("value", "day90", "month12"):
        if key in raw and _num(raw[key]) is None:
            add(f"target.{key} must be a number, got {_show(_strip(raw[key]))}", "target")
    suggested = raw.get("suggested")
    if suggested is not None and (not isinstance(suggested, str) or not suggested.strip()
                                  or len(suggested) > MAX_DESCRIPTION):
        add("target.suggested is the rule a suggested target follows, in words, e.g. "
            f"'trailing 6 months, +2.1 %/month'; got {_show(_strip(suggested))}", "target")
        suggested = None
    return Target(
        value=_num(raw.get("value")), by_period=tuple(by_period.items()), per_grain=tuple(per_grain),  # type: ignore[arg-type]
        day90=_num(raw.get("day90")), month12=_num(raw.get("month12")),
        suggested=suggested.strip() if isinstance(suggested, str) else None,
    )


CUSTOM_EXAMPLE = "{aggregate: sum, table: deals, column: amount, filter: \"status = 'won'\"}"


def _parse_custom(raw: dict, add: Any) -> CustomMeasure | None:
    """The custom measure of a node's `metric:` mapping; its problems name the line of the bad key."""
    lines = raw.get("__lines__", {})
    measure, shape = measure_from_raw(raw)
    for key, msg in shape:
        add(msg, f"metric.{key}" if key != "metric" else "metric", at=lines.get(key))
    if measure is None:
        return None
    for key, msg in check_measure(measure):
        add(f"custom measure: {msg}", f"metric.{key}", at=lines.get(key))
    return measure


def _in_workspace(columns: WorkspaceColumns, table: str, dimension: str) -> bool:
    """The workspace's table has the column, or links (account_id / customer_id) to accounts that do:
    how `metrics.dimension_sql` splits it."""
    own = columns.get(table, ())
    key = "customer_id" if table == "subscriptions" else "account_id"
    return dimension in own or (key in own and dimension in columns.get("accounts", ()))


def _build(raw: Any, source: str | None,
           columns: WorkspaceColumns | None = None) -> tuple[Tree | None, list[Problem]]:
    problems: list[Problem] = []
    if not isinstance(raw, dict) or not isinstance(raw.get("nodes"), list) or not raw["nodes"]:
        return None, [Problem("a tree file is a mapping with a non-empty `nodes:` list, e.g.\n"
                              "nodes:\n  - id: arr\n    metric: arr\n    owner: CEO\n    target: 1200000",
                              file=source, line=raw.get("__line__") if isinstance(raw, dict) else None)]
    if len(raw["nodes"]) > MAX_NODES:
        return None, [Problem(f"the tree has {len(raw['nodes']):,} nodes; the limit is {MAX_NODES}", key="nodes",
                              line=raw["__lines__"].get("nodes"), file=source)]
    for key in ("name", "description"):
        value, limit = raw.get(key), MAX_TEXT if key == "name" else MAX_DESCRIPTION
        if value is not None and (not isinstance(value, (str, int, float)) or len(str(value)) > limit):
            problems.append(Problem(f"the tree's {key} must be text of at most {limit} characters; got "
                                    f"{_show(_strip(value))}", key=key, line=raw["__lines__"].get(key), file=source))
    written = raw.get("dimensions")
    if written is not None and (not isinstance(written, list) or not all(isinstance(d, str) for d in written)):
        problems.append(Problem(f"dimensions must be a list of column names, e.g. [owner, segment, channel]; got "
                                f"{_show(_strip(written))}", key="dimensions", line=raw["__lines__"].get("dimensions"),
                                file=source))
        raw["dimensions"] = written = None
    for key in raw:
        if key not in (*TREE_KEYS, "__line__", "__lines__"):
            problems.append(Problem(f"unknown key {_show(_strip(key))} (allowed: {', '.join(TREE_KEYS)})", key=str(key)[:60],
                                    line=raw["__lines__"].get(key), file=source))
    default_dims = tuple(str(d) for d in (written if isinstance(written, list) else ("owner", "segment", "channel")))
    # Extra columns a tree declares as dimensions (a manager, a region): no canonical table has them,
    # so a node may drill by them without a warning; the workspace that has them is the judge.
    canonical = {c for t in TABLES.values() for c in t.column_names}
    declared_dims = {d for d in default_dims if d not in canonical} if raw.get("dimensions") else set()
    grain = raw.get("grain") or "month"
    if not isinstance(grain, str) or grain not in {g.value for g in Grain}:
        problems.append(Problem(f"grain {_show(_strip(grain))} is not one of week, month, quarter, year", key="grain",
                                line=raw["__lines__"].get("grain"), file=source))
        grain = "month"

    nodes: list[Node] = []
    seen: dict[str, int] = {}
    formula_lines: dict[str, int] = {}
    for item in raw["nodes"]:
        if not isinstance(item, dict):
            problems.append(Problem(f"each node is a mapping with id, metric, owner, target; got {_show(_strip(item))}", file=source))
            continue
        line = item["__line__"]
        lines = item["__lines__"]
        nid = item.get("id")
        node_label = str(nid)[:60] if nid is not None else None

        def add(msg: str, key: str | None = None, severity: str = "error", _n: str | None = node_label,
                _l: dict = lines, _line: int = line, at: int | None = None) -> None:
            base = key.split(".")[0] if key else None
            problems.append(Problem(msg, node=_n, key=key, line=at or _l.get(base, _line), file=source,
                                    severity=severity))

        for key in item:
            if key not in (*NODE_KEYS, "__line__", "__lines__"):
                add(f"unknown key {_show(_strip(key))} (allowed: {', '.join(NODE_KEYS)})", str(key)[:60])
        if not isinstance(nid, str) or not _ID_RE.fullmatch(nid):
            add(f"id must be lower_snake_case letters/digits starting with a letter, e.g. new_arr; got {_show(_strip(nid))}", "id")
            continue
        if nid in seen:
            add(f"duplicate id {_show(_strip(nid))} (first defined on line {seen[nid]})", "id")
            continue
        seen[nid] = line
        metric_name = item.get("metric")
        custom = None
        if isinstance(metric_name, dict):
            custom, metric_name = _parse_custom(metric_name, add), None
            if custom is not None and not check_measure(custom):
                metric_name = register_measure(custom)
        elif not isinstance(metric_name, str) or metric_name not in CATALOGUE or metric_name.startswith("custom_"):
            import difflib

            named = [n for n in CATALOGUE if not n.startswith("custom_")]  # run-time measures have no stable name
            close = difflib.get_close_matches(str(metric_name), named, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else f" (known: {', '.join(sorted(named))})"
            add(f"unknown metric {_show(_strip(metric_name))}{hint} — or a custom measure such as {CUSTOM_EXAMPLE}", "metric")
            metric_name = None
        level_raw = item.get("level")
        level = LEVELS.get(str(level_raw)) if not isinstance(level_raw, int) else level_raw
        if level is None or isinstance(level_raw, bool) or not 1 <= level <= 5:
            add(f"level must be one of {', '.join(LEVELS)} or 1–5; got {_show(_strip(level_raw))}", "level")
            level = 0
        for key, limit in (("label", MAX_LABEL), ("owner", MAX_LABEL), ("description", MAX_DESCRIPTION)):
            text = item.get(key)
            if text is not None and (not isinstance(text, (str, int, float)) or isinstance(text, bool)
                                     or len(str(text)) > limit):
                add(f"{key} must be text of at most {limit} characters; got {_show(_strip(text))}", key)
                item[key] = None
        owner = item.get("owner")
        if not isinstance(owner, str) or not owner.strip():
            add("every metric needs an owner (seed 003: if nobody owns it, remove it from the tree)", "owner")
            owner = ""
        elif owner_missing(owner):
            add(f"owner {owner.strip()!r} is still to assign: name the person who owns this number "
                "(seed 003: every number has an owner)", "owner", severity="warning")
        target = _parse_target(item.get("target"), add)
        if not target.is_set and target.suggested:
            add(f"{target.suggested} — type a target once you have one (seed 003: a number as target)",
                "target", severity="warning")
        elif not target.is_set:
            add("every metric needs a numeric target (seed 003: not a range, a number)", "target")
        direction = item.get("direction")
        if direction is not None and direction not in DIRECTIONS:
            add(f"direction must be higher or lower; got {_show(_strip(direction))}", "direction")
            direction = None
        review = item.get("review") or "monthly"
        if review not in REVIEWS:
            add(f"review must be one of {', '.join(REVIEWS)}; got {_show(_strip(review))}", "review")
            review = "monthly"
        amber = None
        thresholds = item.get("thresholds")
        if thresholds is not None:
            value = thresholds.get("amber") if isinstance(thresholds, dict) else thresholds
            if _num(value) is None or not 0 <= _num(value) < 1:  # type: ignore[operator]
                add(f"thresholds.amber must be a fraction such as 0.05 (5 %); got {_show(_strip(value))}", "thresholds")
            else:
                amber = _num(value)
        children = item.get("children") or []
        if not isinstance(children, list) or not all(isinstance(c, str) for c in children):
            add(f"children must be a list of node ids; got {_show(_strip(children))}", "children")
            children = []
        twice = sorted({c for c in children if children.count(c) > 1})
        if twice:
            add(f"children lists {', '.join(map(_show, twice))} more than once", "children")
            children = list(dict.fromkeys(children))
        dims = item.get("dimensions") or []
        no_drill = item.get("dimensions") == []
        if not isinstance(dims, list) or not all(isinstance(d, str) for d in dims):
            add(f"dimensions must be a list of column names; got {_show(_strip(dims))}", "dimensions")
            dims = []
        filt: list[tuple[str, tuple[Any, ...]]] = []
        raw_filter = item.get("filter") or {}
        if not isinstance(raw_filter, dict):
            add("filter must be a mapping of column: value or [values], e.g. {channel: Paid Search}; got "
                f"{_show(_strip(raw_filter))}", "filter")
            raw_filter = {}
        for col, values in raw_filter.items():
            if col in ("__line__", "__lines__"):
                continue
            vals = _filter_values(col, values, lambda msg: add(msg, "filter"))
            if vals is None:
                continue
            filt.append((col, vals))
            if metric_name:
                table = TABLES[CATALOGUE[metric_name].table]
                if col not in table.column_names:
                    add(f"filter column {_show(_strip(col))} is not a column of {table.name} "
                        f"(columns: {', '.join(table.column_names)})", "filter", severity="warning")
        unit = item.get("unit")
        if unit is not None and not isinstance(unit, str):
            add(f"unit must be one of {', '.join(UNITS)}; got {_show(_strip(unit))}", "unit")
        elif unit is not None and unit not in UNITS:
            add(f"unit {_show(_strip(unit))} is not one of {', '.join(UNITS)}", "unit", severity="warning")
        table = TABLES.get(CATALOGUE[metric_name].table) if metric_name else None
        if table is not None:
            joinable = TABLES["accounts"].column_names if {"account_id", "customer_id"} & set(table.column_names) else ()
            for d in dims:
                if d in table.column_names or d in joinable or d in declared_dims:
                    continue
                if columns is None:
                    add(f"drill dimension {_show(_strip(d))} is not a column of {table.name} (columns: "
                        f"{', '.join(table.column_names)})", "dimensions", severity="warning")
                elif not _in_workspace(columns, table.name, d):
                    here = dict.fromkeys([*table.column_names, *columns.get(table.name, ())])
                    add(f"drill dimension {_show(_strip(d))} is not a column of {table.name} in this workspace (columns: "
                        f"{', '.join(here)})", "dimensions", severity="warning")
        formula = item.get("formula")
        formula_lines[nid] = lines.get("formula", line)
        if formula is not None:
            if not isinstance(formula, str):
                add(f"formula must be text such as 'new_business_arr + expansion_arr'; got {_show(_strip(formula))}", "formula")
                formula = None
            else:
                try:
                    used = formula_names(formula)
                except (SyntaxError, ValueError) as exc:
                    add(f"formula {_show(formula)} cannot be read: {exc}", "formula")
                    formula = None
                else:
                    outside = sorted(used - set(children))
                    if not used:
                        add(f"formula {_show(formula)} uses none of the children: an exact formula computes this "
                            f"node from them, e.g. {' + '.join(children[:2]) or 'child_a + child_b'}", "formula")
                        formula = None
                    elif outside:
                        add(f"formula uses {', '.join(outside)}, which are not children of this node "
                            f"(children: {', '.join(children) or 'none'})", "formula")
        nodes.append(Node(
            id=nid, label=str(item.get("label") or nid), level=level, metric=metric_name or "",
            owner=str(owner), target=target, unit=unit if isinstance(unit, str) else None, direction=direction,
            review=review,
            amber=amber, dimensions=tuple(dims), children=tuple(children), formula=formula,
            filter=tuple(filt), description=str(item.get("description") or ""), line=line, custom=custom,
            no_drill=no_drill,
        ))

    by_id = {n.id: n for n in nodes}
    parents: dict[str, str] = {}
    for n in nodes:
        for c in n.children:
            if c not in by_id:
                if c not in seen:
                    problems.append(Problem(f"unknown child {_show(_strip(c))}", node=n.id, key="children", line=n.line, file=source))
                continue
            if c in parents and parents[c] != n.id:
                problems.append(Problem(f"{_show(_strip(c))} already has parent {parents[c]!r}; a node has one parent",
                                        node=n.id, key="children", line=n.line, file=source))
                continue
            parents[c] = n.id
            child = by_id[c]
            if n.level and child.level and child.level <= n.level:
                problems.append(Problem(
                    f"level {child.level_name} is not below its parent {n.id!r} ({n.level_name}); "
                    "a child sits on a lower level", node=c, key="level", line=child.line, file=source))
    # Cycles: follow parents upward from every node.
    for n in nodes:
        walk, cur = [n.id], n.id
        while cur in parents:
            cur = parents[cur]
            if cur in walk:
                problems.append(Problem(f"cycle: {' → '.join([*walk[walk.index(cur):], cur])}", node=n.id,
                                        key="children", line=n.line, file=source))
                break
            walk.append(cur)
    for n in nodes:
        if n.formula is None:
            continue
        units = {c: by_id[c].shown_unit for c in n.children if c in by_id and by_id[c].metric}
        for msg in formula_unit_problems(n.formula, units, n.shown_unit if n.metric else None):
            problems.append(Problem(msg, node=n.id, key="formula", line=formula_lines.get(n.id, n.line), file=source))
    roots = [n for n in nodes if n.id not in parents]
    deep = _too_deep(nodes, parents)
    if deep is not None:
        problems.append(Problem(f"the tree is more than {MAX_TREE_DEPTH} levels deep below the north star; "
                                "a KPI tree needs five", node=deep.id, key="children", line=deep.line, file=source))
    if nodes and not roots:
        problems.append(Problem("no root: every node is somebody's child (a cycle)", file=source))
    if len(roots) > 1:
        top = min(roots, key=lambda n: (n.level or 9, n.line or 0))
        for n in roots:
            if n is not top:
                problems.append(Problem(
                    f"not connected to the level above (seed 003: connect every level); "
                    f"add it to the children of a node, e.g. {top.id!r}", node=n.id, key="children",
                    line=n.line, file=source))
    for n in roots[:1]:
        if n.level not in (0, 1):
            problems.append(Problem(f"the root is the north star and sits on level 1, not {n.level_name}",
                                    node=n.id, key="level", line=n.line, file=source, severity="warning"))
    if any(p.severity == "error" for p in problems) and not nodes:
        return None, problems
    tree = Tree(
        name=str(raw.get("name") or (Path(source).stem if source else "tree")),
        nodes=tuple(nodes), grain=grain, dimensions=default_dims,
        description=str(raw.get("description") or ""), source=source,
    )
    if not roots or deep is not None:
        return None, problems
    if not any(p.severity == "error" for p in problems):
        problems.extend(_evaluator_checks(tree, source))
    return tree, problems


def _filter_values(col: Any, values: Any, add: Any) -> tuple[Any, ...] | None:
    """A node filter's values as the evaluator binds them (`metrics.filter_sql`: hashable scalars,
    at least one, each compared as text), or None after saying what is wrong."""
    if not isinstance(col, str) or not col.strip() or len(col) > MAX_TEXT:
        add(f"filter columns are column names such as channel; got {_show(_strip(col))}")
        return None
    vals = values if isinstance(values, list) else [values]
    if not vals:
        add(f"filter {col}: give at least one value, e.g. {{{col}: [A, B]}} (or leave the column out)")
        return None
    if len(vals) > MAX_FILTER_VALUES:
        add(f"filter {col} lists {len(vals):,} values; the limit is {MAX_FILTER_VALUES}")
        return None
    for v in vals:
        if isinstance(v, bool):
            add(f"filter {col}: {str(v).lower()} is read as yes/no by YAML; put the value in quotes, e.g. 'No'")
            return None
        if v is None or isinstance(v, float) and not math.isfinite(v):
            add(f"filter {col}: an empty or non-finite value cannot match a row; write the value, e.g. "
                f"{{{col}: Paid Search}}")
            return None
        if not isinstance(v, (str, int, float, date)) or len(str(v)) > MAX_TEXT:
            add(f"filter {col}: each value is one piece of text or a number, e.g. {{{col}: [A, B]}}; got "
                f"{_show(_strip(v))}")
            return None
    return tuple(vals)


def _too_deep(nodes: list[Node], parents: dict[str, str]) -> Node | None:
    """The first node more than MAX_TREE_DEPTH steps below its root (cycles are reported apart)."""
    for n in nodes:
        steps, cur = 0, n.id
        while cur in parents and steps <= MAX_TREE_DEPTH:
            cur, steps = parents[cur], steps + 1
            if cur == n.id:
                break
        if steps > MAX_TREE_DEPTH:
            return n
    return None


def _evaluator_checks(tree: Tree, source: str | None) -> list[Problem]:
    """Runs what evaluation, explanation and the charts rely on, on a tree that passed every rule,
    so "valid" means "can be evaluated": the walk from the root, hashable cache keys, each node's
    catalogue metric, its target for every grain, its formula through the attribution's own
    reader and its filter through the SQL the metrics build (`metrics.filter_sql`).
    A failure here is a gap in the rules above; it is reported, never raised."""
    from .attribution import Formula
    from .metrics import MetricQuery, filter_sql
    from .periods import period_containing

    problems: list[Problem] = []
    try:
        tree.walk()
    except (KeyError, StopIteration, RecursionError) as exc:
        return [Problem(f"the tree cannot be walked from its north star ({_show(str(exc))})", file=source)]
    day = date(2026, 1, 15)
    periods = {grain: period_containing(day, grain) for grain in Grain}
    for n in tree.nodes:
        try:
            hash(n)  # results are cached by (metric, periods, filter): every part must be hashable
            m = CATALOGUE[n.metric]
            for period in periods.values():
                n.target.for_period(period, m.kind, m.rollup)
            if n.formula:
                Formula.parse(n.formula)
            table = TABLES.get(m.table)
            own = tuple((c, v) for c, v in n.filter if table is not None and c in table.column_names)
            q = MetricQuery(m.name, (periods[Grain.MONTH],), day, None, own)
            hash(q)
            filter_sql(q, m.table, [])
        except Exception as exc:  # noqa: BLE001 - any failure is a problem to report, not a traceback
            problems.append(Problem(f"this node cannot be evaluated: {_show(str(exc))}", node=n.id, line=n.line,
                                    file=source))
    return problems


def tree_to_dict(tree: Tree) -> dict[str, Any]:
    """The YAML structure of a tree, with defaults left out, for saving."""
    nodes = []
    for n in tree.nodes:
        d: dict[str, Any] = {"id": n.id, "label": n.label, "level": n.level_name,
                             "metric": n.custom.to_yaml() if n.custom is not None else n.metric}
        if n.filter:
            d["filter"] = {k: (list(v) if len(v) > 1 else v[0]) for k, v in n.filter}
        if n.unit:
            d["unit"] = n.unit
        if n.direction:
            d["direction"] = n.direction
        d["owner"] = n.owner
        d["review"] = n.review
        d["target"] = n.target.to_yaml()
        if n.amber is not None:
            d["thresholds"] = {"amber": n.amber}
        if n.dimensions or n.no_drill:
            d["dimensions"] = list(n.dimensions)
        if n.formula:
            d["formula"] = n.formula
        if n.description:
            d["description"] = n.description
        if n.children:
            d["children"] = list(n.children)
        nodes.append(d)
    out: dict[str, Any] = {"name": tree.name}
    if tree.description:
        out["description"] = tree.description
    out["grain"] = tree.grain
    out["dimensions"] = list(tree.dimensions)
    out["nodes"] = nodes
    return out


def dump_tree(tree: Tree) -> str:
    return yaml.safe_dump(tree_to_dict(tree), sort_keys=False, allow_unicode=True, width=100)


def save_tree(tree: Tree, path: str | Path) -> None:
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(dump_tree(tree), encoding="utf-8")
    tmp.replace(path)


def raw_without_lines(text: str) -> Any:
    """The plain YAML structure (no line bookkeeping), for editors; None for a file that breaks the
    limits or is not YAML (`read_yaml` says why)."""
    raw, problems = read_yaml(text)
    return None if problems else _strip(raw)


def validate_tree(tree: Tree, columns: WorkspaceColumns | None = None) -> list[Problem]:
    """Every problem of an in-memory tree, with lines of the YAML it saves to (`dump_tree`);
    with `columns`, drill dimensions are checked against that workspace too (see `parse_yaml`)."""
    return parse_yaml(dump_tree(tree), tree.source, columns)[1]


def workspace_columns(profile: Profile) -> WorkspaceColumns:
    """Table → its columns, from a workspace's `metrics.Profile` (filled or not: a column the user's
    file has is no typo even while empty)."""
    return {table: tuple(cols) for table, cols in profile.filled.items()}
