"""Why is it red? Children attribution, segment drill-down and the red path for one node.

`explain_node(workspace_or_engine, tree, node_id, period, versus=...)` answers "where to look and
who to talk to" for one node in one period, against its target, the previous period or the same
period last year. Everything adds up exactly; the arithmetic lives in `attribution`.

1. **Children attribution.** The parent's gap is split over the children of its formula, plus an
   explicit `residual` (the parent's own value or target differing from what its formula gives),
   so the parts add up to the parent's actual gap. Sums split by deltas. Products and other
   formulas are attributed *within segments* — LMDI per segment (Shapley where a factor is zero),
   summed — of the single dimension that best explains the parent's change: over the totals, a
   rep who stops winning Enterprise deals would show up as a smaller average deal size (fewer big
   deals in the mix), which is Simpson's paradox; within reps or segments it is win rate.
   Influence children (not in the formula) get their own status and change, never a share.
2. **Segment drill-down.** The node's metric split by each drill dimension (and pairs of them
   when no single one explains much); each segment's contribution to the gap, mix and rate
   effects for ratio metrics (exact, see `attribution.mix_rate`), dimensions ranked
   Adtributor-style by explanatory power, succinctness and surprise; the top segment is narrowed
   by a second dimension when one sub-segment carries most of it ("Enterprise × Dana Whitfield").
3. **Red path.** From the node down the child that explains most of the gap (exact links: the
   largest adverse part, if the child is itself off its baseline; influence links: the red child
   furthest beyond its amber band) to a lever, with its top segment, owners and one sentence each.

Baselines. Against the previous period or last year, every number is compared with its own value
then, segment by segment. Against a target, the parent's gap is value − target and its children's
baselines are their targets; segments have no targets, so their structure comes from a
*reference*: of the `REFERENCE_PERIODS` periods before and the same period last year, every one
in which the node (for a formula: its children) was within its amber band of target, pooled (the
single closest when none was) — periods that went to plan have the mix the plan assumed, whereas
the month just before may already carry a problem that began weeks ago, and pooling several
evens out a small segment's noise. Additive metrics then share the target
out over segments by their weight in the reference period (segment baseline = target × share);
ratio metrics keep each segment's reference weight and rate, and the distance between target and
reference level is reported as its own line, `(target vs reference level)`, which no segment owns.
Within-segment children attribution against a target runs from the reference period to now per
segment, plus target → reference over the totals (small by the choice of period): exact in sum.

Speed. A node and its children are read together: one SQL scan per (table, join condition) —
each node's filter moves into its aggregates' FILTER clause — grouped by the finest combination
of the drill dimensions, for the current period and the candidate reference periods at once;
every split (totals, a dimension, a pair) is then a `bincount` over those cells. Metrics whose
components do not add up over cells (per-customer MRR movements, DISTINCT counts) use the
catalogue's own query per dimension. Results are cached per workspace data version. The SQL is
built from the catalogue's building blocks in `metrics` (periods, dimension and filter SQL).

The package reads as the steps, in the order a call takes them:

- `cells` — one SQL scan per source for a node and its children, finest cells per period; splits
  are `bincount`s over them (`NodeData`, `Split`), reference periods (`reference_periods`).
- `values` — a metric's value over its components, per segment (`ValueFn`).
- `view` — one node's value, baseline and gap as this explanation compares them.
- `segments` — each drill dimension's segments, their parts of the gap, dimensions ranked.
- `finding` — beside a mix shift, the segment whose own rate moved.
- `children` — the parent's gap over its formula's children, within segments for products.
- `analysis` — a node's children and segments together; nodes past those without data.
- `path`, `causes` — the red path to a lever; every lever carrying a material part of the gap.
- `words`, `sentences`, `tables` — plain words, the sentences of a step, the segment tables.
- `model`, `explanation` — the result dataclasses and their JSON (`Explanation.to_dict`).
- `run` — `explain_node`, the entry point.
"""

from .cells import _RESULTS, NodeData, Split, _cells_ok, available_dimensions, reference_periods
from .explanation import Explanation
from .model import (
    NAMED_SHARE,
    NONE,
    PAIR_SEP,
    PSEUDO,
    VERSUS,
    Cause,
    ChildPart,
    DimensionRank,
    Finding,
    Influence,
    SegmentPart,
    Step,
)
from .run import explain_node
from .segments import segment_basis
from .tables import (
    named_segments,
    segment_columns,
    segment_display,
    segment_frame,
    segment_heading,
    segment_sentence,
)
from .values import ValueFn, _duck_value
from .words import RELATIVE_AS_AMOUNT, _plural, baseline_words, compare_words, relative_words

__all__ = [
    "NAMED_SHARE", "NONE", "PAIR_SEP", "PSEUDO", "RELATIVE_AS_AMOUNT", "VERSUS",
    "Cause", "ChildPart", "DimensionRank", "Explanation", "Finding", "Influence", "NodeData", "SegmentPart", "Split",
    "Step", "ValueFn",
    "_RESULTS", "_cells_ok", "_duck_value", "_plural",
    "available_dimensions", "baseline_words", "compare_words", "explain_node", "named_segments", "reference_periods",
    "relative_words", "segment_basis", "segment_columns", "segment_display", "segment_frame", "segment_heading",
    "segment_sentence",
]
