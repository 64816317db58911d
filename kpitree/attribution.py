"""Exact attribution arithmetic: how much of a change each part accounts for, summing to the whole.

Pure numbers, no data access, so every rule here can be checked by hand and by property tests:

- **Formulas over children** (`Formula`, `attribute`): a linear formula (`a + b - c`, `12 * a`)
  splits by plain deltas; a product or quotient of children (`deals * win_rate * asp`,
  `a * b / c`) by log-mean Divisia (LMDI-I), whose parts add up exactly because
  ln(y1/y0) = Σ e_k ln(x1_k/x0_k); anything else (mixed + - * /), and products with a factor
  that is zero or negative, by Shapley values (exact enumeration up to `MAX_EXACT_PLAYERS`
  children, sampled permutations beyond, which still sum exactly). `attribute_cells` does the
  same per segment, vectorised, which is what makes the explanation survive Simpson's paradox.
- **Segments of a ratio** (`mix_rate`): R = Σ w_s r_s; the change splits per segment into a rate
  effect w̄_s (r1_s − r0_s) and a mix effect (w1_s − w0_s)(r̄_s − R̄) with averaged weights and
  rates; both sum exactly to R1 − R0 because Σ (w1_s − w0_s) = 0.
- **Segments of any other metric** (`component_path`): the change is first split over the
  metric's components (Shapley), each component's part then over segments in proportion to
  their change of that component.
- **Ranking** (`js_surprise`, `adtributor`): explanatory power and Jensen–Shannon surprise as
  in Adtributor (Bhagwan et al., NSDI 2014), with a preference for succinct explanations.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

MAX_EXACT_PLAYERS = 10  # 2^10 formula evaluations: still instant
SAMPLED_PERMUTATIONS = 2000  # beyond MAX_EXACT_PLAYERS; antithetic pairs, fixed seed
EEP_THRESHOLD = 0.10  # Adtributor: an element must explain at least this share to be a candidate
EP_THRESHOLD = 0.67  # Adtributor: a dimension's candidate set must explain this share together

ADDITIVE, LMDI, SHAPLEY, SAMPLED = "additive", "lmdi", "shapley", "shapley_sampled"

Values = Mapping[str, float]
Arrays = Mapping[str, np.ndarray]


# --- formulas ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Formula:
    """A parsed `parent = expression` over child ids: its kind and a safe numeric evaluator."""

    text: str
    expression: str
    names: tuple[str, ...]
    kind: str  # additive (linear), product (monomial), general
    coefficients: tuple[tuple[str, float], ...] = ()  # additive: parent = constant + Σ c_k x_k
    constant: float = 0.0  # additive: the constant term; product: the leading coefficient
    exponents: tuple[tuple[str, float], ...] = ()  # product: parent = constant × Π x_k ** e_k
    _tree: ast.Expression | None = field(default=None, repr=False, compare=False)

    @classmethod
    def parse(cls, text: str) -> Formula:
        """Reads `a + b`, `p = a * b / c`; raises ValueError on anything but + − × ÷, numbers, names."""
        expression = (text.split("=", 1)[1] if "=" in text else text).strip()
        tree = ast.parse(expression, mode="eval")
        names: list[str] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                if node.id not in names:
                    names.append(node.id)
            elif isinstance(node, ast.Constant):
                if not isinstance(node.value, (int, float)) or isinstance(node.value, bool):
                    raise ValueError(f"constant {node.value!r} is not a number")
            elif not isinstance(node, (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Load, ast.Add, ast.Sub,
                                       ast.Mult, ast.Div, ast.USub, ast.UAdd)):
                raise ValueError(f"{type(node).__name__} is not allowed (use + - * / numbers and child ids)")
        linear = _linear(tree.body)
        if linear is not None:
            coefs, const = linear
            return cls(text, expression, tuple(names), "additive", tuple((n, coefs.get(n, 0.0)) for n in names),
                       const, (), tree)
        mono = _monomial(tree.body)
        if mono is not None:
            coef, exps = mono
            return cls(text, expression, tuple(names), "product", (), coef,
                       tuple((n, exps.get(n, 0.0)) for n in names), tree)
        return cls(text, expression, tuple(names), "general", (), 0.0, (), tree)

    def __call__(self, values: Mapping[str, float | np.ndarray]) -> np.ndarray:
        """The formula's value; works element-wise on arrays; x/0 gives inf or nan, never raises."""
        tree = self._tree or ast.parse(self.expression, mode="eval")
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return evaluate(tree.body, values)


def evaluate(node: ast.AST, values: Mapping[str, float | np.ndarray], *,
             calls: Mapping[str, Callable[..., np.ndarray]] | None = None, nan_on_zero: bool = False) -> np.ndarray:
    """An arithmetic expression tree (names, numbers, + − × ÷, optional `calls`) over arrays.

    Formulas divide the IEEE way (x/0 is ±inf): a child at zero is a fact the attribution must see.
    Metric values (`nan_on_zero`) follow SQL's NULLIF: a ratio over an empty denominator has no value.
    """
    if isinstance(node, ast.Expression):
        return evaluate(node.body, values, calls=calls, nan_on_zero=nan_on_zero)
    if isinstance(node, ast.Name) and node.id in values:
        return np.asarray(values[node.id], dtype="float64")
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return np.asarray(float(node.value), dtype="float64")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = evaluate(node.operand, values, calls=calls, nan_on_zero=nan_on_zero)
        return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
        a = evaluate(node.left, values, calls=calls, nan_on_zero=nan_on_zero)
        b = evaluate(node.right, values, calls=calls, nan_on_zero=nan_on_zero)
        if isinstance(node.op, ast.Add):
            return a + b
        if isinstance(node.op, ast.Sub):
            return a - b
        if isinstance(node.op, ast.Mult):
            return a * b
        return np.divide(a, np.where(b == 0, np.nan, b) if nan_on_zero else b)
    if (calls and isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in calls
            and not node.keywords):
        return calls[node.func.id](*(evaluate(a, values, calls=calls, nan_on_zero=nan_on_zero) for a in node.args))
    raise ValueError(f"cannot evaluate {ast.dump(node)[:60]}")


def _linear(node: ast.AST) -> tuple[dict[str, float], float] | None:
    """(coefficients, constant) when the expression is linear in its names, else None."""
    if isinstance(node, ast.Name):
        return {node.id: 1.0}, 0.0
    if isinstance(node, ast.Constant):
        return {}, float(node.value)
    if isinstance(node, ast.UnaryOp):
        inner = _linear(node.operand)
        if inner is None:
            return None
        sign = -1.0 if isinstance(node.op, ast.USub) else 1.0
        return {k: sign * v for k, v in inner[0].items()}, sign * inner[1]
    if not isinstance(node, ast.BinOp):
        return None
    left, right = _linear(node.left), _linear(node.right)
    if left is None or right is None:
        return None
    if isinstance(node.op, (ast.Add, ast.Sub)):
        sign = 1.0 if isinstance(node.op, ast.Add) else -1.0
        coefs = dict(left[0])
        for k, v in right[0].items():
            coefs[k] = coefs.get(k, 0.0) + sign * v
        return coefs, left[1] + sign * right[1]
    if isinstance(node.op, ast.Mult):
        if not left[0]:
            return {k: left[1] * v for k, v in right[0].items()}, left[1] * right[1]
        if not right[0]:
            return {k: right[1] * v for k, v in left[0].items()}, left[1] * right[1]
        return None
    if isinstance(node.op, ast.Div) and not right[0] and right[1] != 0:
        return {k: v / right[1] for k, v in left[0].items()}, left[1] / right[1]
    return None


def _monomial(node: ast.AST) -> tuple[float, dict[str, float]] | None:
    """(coefficient, exponents) when the expression is a product/quotient of names, else None."""
    if isinstance(node, ast.Name):
        return 1.0, {node.id: 1.0}
    if isinstance(node, ast.Constant):
        return float(node.value), {}
    if isinstance(node, ast.UnaryOp):
        inner = _monomial(node.operand)
        if inner is None:
            return None
        return (-inner[0] if isinstance(node.op, ast.USub) else inner[0]), inner[1]
    if not isinstance(node, ast.BinOp) or not isinstance(node.op, (ast.Mult, ast.Div)):
        return None
    left, right = _monomial(node.left), _monomial(node.right)
    if left is None or right is None:
        return None
    sign = 1.0 if isinstance(node.op, ast.Mult) else -1.0
    if sign < 0 and right[0] == 0:
        return None
    exps = dict(left[1])
    for k, v in right[1].items():
        exps[k] = exps.get(k, 0.0) + sign * v
    coef = left[0] * right[0] if sign > 0 else left[0] / right[0]
    return coef, exps


# --- attribution over the children of a formula ------------------------------------------------


@dataclass(frozen=True)
class Attribution:
    """Each child's part of f(x1) − f(x0); the parts add up to `total` (to rounding)."""

    method: str
    parts: tuple[tuple[str, float], ...]
    total: float
    note: str = ""

    def part(self, name: str) -> float:
        return dict(self.parts)[name]


def log_mean(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    """L(a, b) = (a − b) / (ln a − ln b), and a where a = b: the LMDI weight (a, b > 0)."""
    a, b = np.asarray(a, dtype="float64"), np.asarray(b, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        close = np.abs(a - b) <= 1e-12 * np.maximum(np.abs(a), np.abs(b))
        out = np.where(close, (a + b) / 2, (a - b) / (np.log(a) - np.log(b)))
    return out


def additive_parts(formula: Formula, x0: Arrays, x1: Arrays) -> dict[str, np.ndarray]:
    """Linear formulas: child k's part is c_k (x1_k − x0_k); exact by linearity."""
    coefs = dict(formula.coefficients)
    return {n: coefs[n] * (np.asarray(x1[n], dtype="float64") - np.asarray(x0[n], dtype="float64"))
            for n in formula.names}


def lmdi_parts(formula: Formula, x0: Arrays, x1: Arrays) -> dict[str, np.ndarray]:
    """Product formulas, every factor and result positive: L(y1, y0) · e_k · ln(x1_k / x0_k)."""
    exps = dict(formula.exponents)
    y0, y1 = formula(x0), formula(x1)
    weight = log_mean(y1, y0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return {n: weight * exps[n] * np.log(np.asarray(x1[n], dtype="float64") / np.asarray(x0[n], dtype="float64"))
                for n in formula.names}


def shapley_parts(f: Callable[[Arrays], np.ndarray], names: Sequence[str], x0: Arrays, x1: Arrays,
                  *, max_exact: int = MAX_EXACT_PLAYERS, seed: int = 0) -> dict[str, np.ndarray]:
    """Shapley values of moving each input from x0 to x1: exact enumeration, or sampled permutations.

    Efficiency makes the parts add up to f(x1) − f(x0) in both cases (every permutation's
    marginal contributions telescope), so sampling only blurs the split, never the total.
    """
    n = len(names)
    if n == 0:
        return {}
    if n > max_exact:
        return _sampled_shapley(f, names, x0, x1, seed)
    x0a = {k: np.asarray(x0[k], dtype="float64") for k in names}
    x1a = {k: np.asarray(x1[k], dtype="float64") for k in names}
    values = []
    for mask in range(1 << n):
        point = {k: (x1a[k] if mask >> i & 1 else x0a[k]) for i, k in enumerate(names)}
        values.append(np.asarray(f(point), dtype="float64"))
    weights = [math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n) for s in range(n)]
    parts = {}
    with np.errstate(invalid="ignore", over="ignore"):  # inf − inf (a division by zero) stays nan
        for i, k in enumerate(names):
            total = np.zeros_like(values[0])
            for mask in range(1 << n):
                if mask >> i & 1:
                    continue
                total = total + weights[bin(mask).count("1")] * (values[mask | 1 << i] - values[mask])
            parts[k] = total
    return parts


def _sampled_shapley(f: Callable[[Arrays], np.ndarray], names: Sequence[str], x0: Arrays, x1: Arrays,
                     seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = len(names)
    sums = {k: np.zeros_like(np.asarray(f(x0), dtype="float64")) for k in names}
    count = 0
    for _ in range(SAMPLED_PERMUTATIONS // 2):
        order = list(rng.permutation(n))
        for perm in (order, order[::-1]):  # antithetic pair: halves the variance for free
            point = {k: np.asarray(x0[k], dtype="float64") for k in names}
            before = np.asarray(f(point), dtype="float64")
            for i in perm:
                point[names[i]] = np.asarray(x1[names[i]], dtype="float64")
                after = np.asarray(f(point), dtype="float64")
                sums[names[i]] = sums[names[i]] + (after - before)
                before = after
            count += 1
    return {k: v / count for k, v in sums.items()}


def attribute(formula: Formula, x0: Values, x1: Values) -> Attribution:
    """Each child's part of f(x1) − f(x0): deltas, LMDI or Shapley as the formula allows.

    LMDI needs every factor and both results strictly positive (logarithms); a zero or negative
    factor, or a negative leading coefficient, falls back to Shapley, which is exact for any
    formula. A formula that cannot be evaluated at some mix of x0 and x1 (a division by zero)
    gets no parts and says so.
    """
    total = float(formula(x1) - formula(x0))
    if formula.kind == "additive":
        parts = additive_parts(formula, x0, x1)
        return Attribution(ADDITIVE, tuple((k, float(v)) for k, v in parts.items()), total)
    note = ""
    if formula.kind == "product":
        if _positive(formula, x0, x1):
            parts = lmdi_parts(formula, x0, x1)
            return Attribution(LMDI, tuple((k, float(v)) for k, v in parts.items()), total)
        note = "a factor is zero or negative, so LMDI (logarithms) cannot apply: Shapley values instead"
    parts = shapley_parts(formula, formula.names, x0, x1)
    if not all(math.isfinite(float(v)) for v in parts.values()) or not math.isfinite(total):
        return Attribution("undefined", (), total,
                           "the formula divides by zero between the baseline and the actual values")
    method = SHAPLEY if len(formula.names) <= MAX_EXACT_PLAYERS else SAMPLED
    return Attribution(method, tuple((k, float(v)) for k, v in parts.items()), total, note)


def _positive(formula: Formula, x0: Values, x1: Values) -> bool:
    if formula.constant <= 0:
        return False
    vals = [float(x0[n]) for n in formula.names] + [float(x1[n]) for n in formula.names]
    return all(math.isfinite(v) and v > 0 for v in vals)


def attribute_cells(formula: Formula, x0: Arrays, x1: Arrays) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Per-cell (segment) attribution, vectorised: each child's part in each cell, and methods used.

    Additive formulas: deltas. Products: LMDI in cells where every factor and the result are
    positive, Shapley in the others (zeros are common in small segments). Anything else:
    Shapley. In every cell the parts add up to f(x1_cell) − f(x0_cell).
    """
    size = len(np.atleast_1d(np.asarray(next(iter(x0.values())))))
    x0a = {n: np.broadcast_to(np.asarray(x0[n], dtype="float64"), (size,)) for n in formula.names}
    x1a = {n: np.broadcast_to(np.asarray(x1[n], dtype="float64"), (size,)) for n in formula.names}
    if formula.kind == "additive":
        return additive_parts(formula, x0a, x1a), {ADDITIVE: size}
    parts = {n: np.zeros(size) for n in formula.names}
    lmdi_cells = np.zeros(size, dtype=bool)
    if formula.kind == "product" and formula.constant > 0:
        lmdi_cells = np.ones(size, dtype=bool)
        for n in formula.names:
            lmdi_cells &= (x0a[n] > 0) & (x1a[n] > 0) & np.isfinite(x0a[n]) & np.isfinite(x1a[n])
    if lmdi_cells.any():
        sub0 = {n: v[lmdi_cells] for n, v in x0a.items()}
        sub1 = {n: v[lmdi_cells] for n, v in x1a.items()}
        for n, v in lmdi_parts(formula, sub0, sub1).items():
            parts[n][lmdi_cells] = v
    rest = ~lmdi_cells
    if rest.any():
        sub0 = {n: v[rest] for n, v in x0a.items()}
        sub1 = {n: v[rest] for n, v in x1a.items()}
        for n, v in shapley_parts(formula, formula.names, sub0, sub1).items():
            parts[n][rest] = v
    methods = {}
    if lmdi_cells.any():
        methods[LMDI] = int(lmdi_cells.sum())
    if rest.any():
        methods[SHAPLEY] = int(rest.sum())
    return parts, methods


# --- segments -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MixRate:
    """Per segment of a ratio R = Σ w_s r_s: rate effect, mix effect, and the inputs as used."""

    rate: np.ndarray
    mix: np.ndarray
    w0: np.ndarray
    w1: np.ndarray
    r0: np.ndarray
    r1: np.ndarray
    total0: float
    total1: float

    @property
    def contribution(self) -> np.ndarray:
        return self.rate + self.mix


def mix_rate(w0: np.ndarray, r0: np.ndarray, w1: np.ndarray, r1: np.ndarray) -> MixRate:
    """Splits R1 − R0 per segment into rate w̄ (r1 − r0) and mix (w1 − w0)(r̄ − R̄); exact in total.

    Weights are the segments' shares of the denominator (each side sums to 1). A segment absent
    on one side has no rate there: it takes its rate from the other side, so its whole part is
    mix (it appeared or vanished), never a fictitious rate change.
    """
    w0 = np.asarray(w0, dtype="float64")
    w1 = np.asarray(w1, dtype="float64")
    r0 = np.asarray(r0, dtype="float64").copy()
    r1 = np.asarray(r1, dtype="float64").copy()
    miss0, miss1 = ~np.isfinite(r0) | (w0 == 0), ~np.isfinite(r1) | (w1 == 0)
    r0[miss0] = r1[miss0]
    r1[miss1] = r0[miss1]
    both = ~np.isfinite(r0) | ~np.isfinite(r1)
    r0[both] = 0.0
    r1[both] = 0.0
    total0 = float(np.sum(w0 * r0))
    total1 = float(np.sum(w1 * r1))
    mean_total = (total0 + total1) / 2
    rate = (w0 + w1) / 2 * (r1 - r0)
    mix = (w1 - w0) * ((r0 + r1) / 2 - mean_total)
    return MixRate(rate, mix, w0, w1, r0, r1, total0, total1)


def component_path(g: Callable[[Arrays], np.ndarray], components: Sequence[str], c0: Values, c1: Values,
                   segment_deltas: Mapping[str, np.ndarray]) -> tuple[np.ndarray, float]:
    """Segments' parts of g(c1) − g(c0) for a metric that is any function g of its components.

    Shapley splits the change over components; each component's part is shared among segments
    in proportion to their change of that component. Returns (parts per segment, unallocated):
    the unallocated rest (a component whose segment changes cancel out) is reported, not hidden.
    """
    parts = shapley_parts(g, list(components), c0, c1)
    size = len(next(iter(segment_deltas.values()))) if segment_deltas else 0
    out = np.zeros(size)
    unallocated = 0.0
    for comp, part in parts.items():
        part = float(part)
        deltas = np.asarray(segment_deltas.get(comp, np.zeros(size)), dtype="float64")
        total = float(deltas.sum())
        if part == 0:
            continue
        if total == 0 or not math.isfinite(part):
            unallocated += part if math.isfinite(part) else 0.0
            continue
        out = out + part * deltas / total
    return out, unallocated


def shares(values: np.ndarray) -> np.ndarray:
    """Each element's share of the total absolute mass (zeros when there is none)."""
    v = np.abs(np.nan_to_num(np.asarray(values, dtype="float64")))
    total = v.sum()
    return v / total if total > 0 else np.zeros_like(v)


def js_surprise(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Adtributor's surprise per element: its term of the Jensen–Shannon divergence of p and q."""
    p = np.asarray(p, dtype="float64")
    q = np.asarray(q, dtype="float64")
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        tp = np.where(p > 0, p * np.log(p / m), 0.0)
        tq = np.where(q > 0, q * np.log(q / m), 0.0)
    return 0.5 * (tp + tq)


@dataclass(frozen=True)
class Candidate:
    """Adtributor's verdict on one dimension: the elements that explain the change, and scores."""

    chosen: tuple[int, ...]
    explanatory_power: float
    surprise: float
    succeeded: bool

    @property
    def score(self) -> float:
        """Mean surprise per chosen element: surprising and succinct (few elements) ranks first."""
        return self.surprise / len(self.chosen) if self.chosen else 0.0


def adtributor(power: np.ndarray, surprise: np.ndarray, *, eep: float = EEP_THRESHOLD,
               ep: float = EP_THRESHOLD) -> Candidate:
    """Adtributor's candidate set for one dimension (Bhagwan et al., NSDI 2014, Algorithm 1).

    Elements in decreasing surprise that each explain more than `eep` of the change join the set
    until together they explain more than `ep`. `power` is each element's share of the change
    (contribution / total change; may be negative or above 1).
    """
    order = np.argsort(-np.asarray(surprise, dtype="float64"), kind="stable")
    chosen: list[int] = []
    explained = 0.0
    total_surprise = 0.0
    for i in order:
        if power[i] > eep:
            chosen.append(int(i))
            explained += float(power[i])
            total_surprise += float(surprise[i])
            if explained > ep:
                return Candidate(tuple(chosen), explained, total_surprise, True)
    return Candidate(tuple(chosen), explained, total_surprise, False)


def pairs_of(dimensions: Sequence[str]) -> list[tuple[str, str]]:
    return list(combinations(dimensions, 2))
