"""Custom measures: hostile SQL fragments are refused by the parser check, and DuckDB's sandbox holds behind it."""

from __future__ import annotations

import duckdb
import pytest
from conftest import make_workspace

from kpitree.custom import CustomMeasure, check_filter, check_measure, measure_metric, register_measure
from kpitree.errors import QueryError
from kpitree.evaluate import Engine, evaluate_tree
from kpitree.metrics import Kind, Metric, Source, register
from kpitree.periods import parse_period
from kpitree.tree import parse_yaml

HOSTILE = [
    ("read_csv('/etc/passwd') IS NOT NULL", "read_csv"),
    ("read_csv_auto('/etc/passwd') IS NOT NULL", "not allowed"),
    ("read_parquet('/tmp/x.parquet') IS NOT NULL", "not allowed"),
    ("read_text('/etc/passwd') <> ''", "not allowed"),
    ("glob('/etc/*') IS NOT NULL", "glob"),
    ("status = 'won'; COPY deals TO '/tmp/stolen.csv'", "';' is not allowed"),
    ("COPY deals TO '/tmp/stolen.csv'", "not allowed"),
    ("ATTACH '/tmp/other.duckdb' AS other", "not allowed"),
    ("INSTALL httpfs", "not allowed"),
    ("LOAD httpfs", "not allowed"),
    ("PRAGMA database_list", "not allowed"),
    ("SET enable_external_access = true", "not allowed"),
    ("CALL duckdb_tables()", "not allowed"),
    ("status = 'won' -- ; DROP TABLE deals", "comments"),
    ("status = 'won' /* ; COPY deals TO '/tmp/x.csv' */", "comments"),
    ("deal_id IN (SELECT table_name FROM information_schema.tables)", "subqueries are not allowed"),
    ("EXISTS (SELECT * FROM duckdb_tables())", "subqueries are not allowed"),
    ("amount > (SELECT max(mrr) FROM subscriptions)", "subqueries are not allowed"),
    ("status = 'won' UNION SELECT 1", "not allowed"),
    ("information_schema.tables.table_name = 'deals'", "qualified name"),
    ("pg_catalog.pg_class.relname IS NULL", "qualified name"),
    ("main.deals.amount > 0", "qualified name"),
    ("other.amount > 0", "qualified name"),
    ("getenv('HOME') = '/root'", "getenv"),
    ("current_setting('enable_external_access') = 'true'", "not allowed"),
    ("query('SELECT 1') IS NOT NULL", "query"),
    ("sum(amount) > 0", "aggregate sum()"),
    ("status = ?", "parameters"),
    ("$$won$$ = status", "dollar-quoted"),
    ("DROP TABLE deals", "not allowed"),
    ("status = 'won", "cannot be read"),
    ("region = 'EMEA'", "unknown column 'region'"),
    ("", "empty"),
    ("status = '" + "x" * 3000 + "'", "limit is"),
    ("(" * 43 + "status = 'won'" + ")" * 43, "nests parentheses 43 deep"),  # RecursionError in sqlglot before
    ("NOT " * 450 + "status = 'won'", "too complex"),
    (" AND ".join(["status = 'won'"] * 100), "too complex"),
]


@pytest.mark.parametrize("fragment, message", HOSTILE, ids=[h[0][:40] for h in HOSTILE])
def test_hostile_fragments_are_refused(fragment, message):
    sql, errors = check_filter(fragment, "deals")
    assert sql is None
    assert errors and any(message in e for e in errors), errors


def test_at_least_fifteen_hostile_fragments():
    assert len(HOSTILE) >= 15


@pytest.mark.parametrize(
    "fragment, expected",
    [
        ("status = 'won'", '"t"."status" = \'won\''),
        ("status = 'won' AND segment IN ('SMB', 'Mid-Market')", None),
        ("lower(stage) LIKE '%won%' OR amount BETWEEN 1000 AND 5000", None),
        ("close_date >= DATE '2026-01-01' AND date_diff('day', created_date, close_date) < 90", None),
        ("coalesce(channel, '') <> 'Partner' AND NOT (deal_type = 'renewal')", None),
        ("strftime(close_date, '%Y') = '2026' AND year(created_date) = 2026", None),
        ("(amount > 0)", None),
    ],
)
def test_safe_fragments_pass_and_bind_every_column_to_the_table(fragment, expected):
    sql, errors = check_filter(fragment, "deals")
    assert errors == []
    assert '"t".' in sql
    if expected:
        assert sql == expected
    # What runs is regenerated from the checked tree: it checks again, the same.
    assert check_filter(sql.replace('"t".', ""), "deals")[1] == []


def test_measure_shape_errors_quote_the_value():
    problems = dict(check_measure(CustomMeasure("median", "invoices", "x")))
    assert "median" in problems["aggregate"] and "invoices" in problems["table"]
    problems = dict(check_measure(CustomMeasure("sum", "deals", "segment", kind="gauge", unit="USD")))
    assert "numeric" in problems["column"] and "gauge" in problems["kind"] and "USD" in problems["unit"]
    assert (
        check_measure(CustomMeasure("count", "quotas"))
        and "no date column" in dict(check_measure(CustomMeasure("count", "quotas")))["date_column"]
    )


DEALS = """
deal_id,account_id,owner,created_date,close_date,status,amount,deal_type,segment,channel
D1,A1,Ann,2026-08-01,2026-09-03,won,1000,new,SMB,Outbound
D2,A2,Ann,2026-08-02,2026-09-10,won,3000,new,Enterprise,Partner
D3,A3,Bob,2026-08-03,2026-09-20,lost,5000,new,Enterprise,Outbound
D4,A4,Bob,2026-09-01,2026-10-05,won,7000,expansion,Enterprise,Partner
D5,A5,Bob,2026-09-02,2026-10-06,won,2000,new,SMB,Outbound
D6,A6,Ann,2026-10-01,,open,9000,new,SMB,Outbound
"""


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return make_workspace(tmp_path_factory.mktemp("custom"), deals=DEALS)


@pytest.fixture(scope="module")
def engine(ws):
    return Engine(ws)


@pytest.mark.parametrize(
    "measure, sep, oct_",
    [
        (CustomMeasure("sum", "deals", "amount", "status = 'won'"), 4000, 9000),
        (CustomMeasure("sum", "deals", "amount", "status = 'won' AND segment = 'Enterprise'"), 3000, 7000),
        (CustomMeasure("count", "deals", filter="status IN ('won', 'lost')"), 3, 2),
        (CustomMeasure("count_distinct", "deals", "owner", "status = 'won'"), 1, 1),
        (CustomMeasure("avg", "deals", "amount", "status = 'won'"), 2000, 4500),
        (CustomMeasure("max", "deals", "amount"), 5000, 7000),
        (CustomMeasure("count", "deals", date_column="created_date", kind="stock"), 5, 6),
    ],
)
def test_custom_measures_compute_exactly(engine, measure, sep, oct_):
    name = register_measure(measure)
    from kpitree.tree import Node, Target

    node = Node(id="x", label="x", level=1, metric=name, owner="o", target=Target(value=1), custom=measure)
    values = engine.values(node, [parse_period("2026-09"), parse_period("2026-10")])
    assert values == {"2026-09": pytest.approx(sep), "2026-10": pytest.approx(oct_)}


def test_custom_measure_splits_by_segment_for_explanations(engine):
    name = register_measure(CustomMeasure("sum", "deals", "amount", "status = 'won'"))
    df = engine.query(name, [parse_period("2026-09")], dimension="segment")
    assert dict(zip(df["segment"], df["value"], strict=True)) == {"Enterprise": 3000, "SMB": 1000}
    assert measure_metric(CustomMeasure("sum", "deals", "amount")).additive


def test_same_definition_same_name_and_kind_defaults():
    a = CustomMeasure("sum", "deals", "amount", "status = 'won'")
    assert a.name == CustomMeasure("sum", "deals", "amount", "status = 'won'").name
    assert a.name != CustomMeasure("sum", "deals", "amount", "status = 'lost'").name
    assert measure_metric(a).kind is Kind.FLOW and measure_metric(a).unit == "money"
    assert measure_metric(CustomMeasure("avg", "deals", "amount")).kind is Kind.RATIO


def test_tree_with_custom_measure_evaluates(engine):
    text = """
nodes:
  - id: won
    level: north_star
    metric: {aggregate: sum, table: deals, column: amount, filter: "status = 'won'"}
    owner: CRO
    target: 5000
"""
    tree, problems = parse_yaml(text, "t.yaml")
    assert problems == []
    result = evaluate_tree(engine, tree, "2026-09")
    assert result.node("won").value == 4000 and result.node("won").status == "red"


# --- the second wall: even a fragment that skipped the check cannot touch files -----------------------


def test_sandbox_refuses_file_access_even_if_the_check_were_bypassed(ws):
    sneaky = Metric(
        name="custom_bypass_test",
        label="bypass",
        kind=Kind.FLOW,
        unit="count",
        direction="higher",
        definition="a hostile aggregate registered without check_filter",
        sources=(
            Source(
                "deals",
                "t.close_date BETWEEN P.p_start AND P.p_end",
                {"total": "count(*) FILTER (WHERE (SELECT count(*) FROM read_csv('/etc/passwd')) > 0)"},
            ),
        ),
        value="total",
    )
    register(sneaky)
    with pytest.raises(QueryError) as err:
        Engine(ws).query("custom_bypass_test", [parse_period("2026-09")])
    assert "disabled" in str(err.value).lower() or "permission" in str(err.value).lower()


@pytest.mark.parametrize(
    "statement",
    [
        "COPY deals TO '/tmp/kpitree_stolen.csv'",
        "ATTACH '/tmp/kpitree_other.duckdb' AS other",
        "SELECT * FROM read_csv('/etc/passwd')",
        "INSTALL httpfs",
        "SET enable_external_access = true",
    ],
)
def test_workspace_connection_is_sandboxed(ws, statement):
    with ws.connect() as con, pytest.raises(duckdb.Error):
        con.execute(statement)


def test_nesting_up_to_the_limit_still_passes():
    sql, errors = check_filter("(" * 16 + "status = 'won'" + ")" * 16, "deals")
    assert errors == [] and sql is not None and "won" in sql
