"""The Workspaces page's engine form: checked before saving, plain messages, no secret stored or shown."""

from __future__ import annotations

import json
import os
import socket

import pytest
from apptest_utils import failures, unescaped
from engine_fixtures import ROOT, demo_db, postgres_server
from streamlit.testing.v1 import AppTest

from kpitree.engines.load import to_postgres

WORKSPACES = str(ROOT / "views" / "4_Workspaces.py")


@pytest.fixture(scope="module")
def pg():
    with postgres_server() as dsn:
        to_postgres(demo_db(), dsn, "sales")
        yield dsn


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    root = tmp_path / "data"
    (root / "acme").mkdir(parents=True)
    monkeypatch.setenv("KPITREE_DATA_DIR", str(root))
    monkeypatch.delenv("KPITREE_USERS_FILE", raising=False)
    return root


def _form(at: AppTest, kind: str, **fields: str) -> AppTest:
    at.radio(key="eng_kind_acme").set_value(kind).run()
    for key, value in fields.items():
        at.text_input(key=f"eng_{key}_acme").set_value(value)
    return at.button(key="eng_save").click().run()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unset_variable_or_a_refused_connection_is_a_plain_message_and_nothing_is_saved(data_dir, monkeypatch):
    monkeypatch.delenv("ACME_PG", raising=False)
    at = _form(AppTest.from_file(WORKSPACES, default_timeout=60).run(), "postgres", dsn_env="ACME_PG", schema="sales")
    assert not failures(at)
    assert "Not saved: the environment variable ACME_PG is not set" in unescaped(at.error[0].value)
    monkeypatch.setenv("ACME_PG", f"postgresql://ann:s3cr3t-pw@127.0.0.1:{_free_port()}/postgres")
    at = _form(at, "postgres", dsn_env="ACME_PG", schema="sales")
    shown = unescaped(at.error[0].value)
    assert not failures(at) and "cannot connect to PostgreSQL" in shown and "s3cr3t-pw" not in shown
    assert not (data_dir / "acme" / "workspace.json").exists()
    at = _form(at, "postgres", dsn_env="postgresql://ann:s3cr3t-pw@h/db", schema="sales")
    shown = unescaped(at.error[0].value)  # a connection string typed into the name's field is not echoed
    assert "the name of an environment variable" in shown and "s3cr3t-pw" not in shown


def test_a_working_connection_is_saved_by_name_and_listed(data_dir, pg, monkeypatch):
    monkeypatch.setenv("ACME_PG", pg)
    at = _form(AppTest.from_file(WORKSPACES, default_timeout=60).run(), "postgres", dsn_env="ACME_PG", schema="sales")
    assert not failures(at) and not at.error
    done = unescaped(at.success[0].value)
    assert "now reads PostgreSQL (schema sales" in done and "deals" in done and "checked in" in done
    saved = json.loads((data_dir / "acme" / "workspace.json").read_text())
    assert saved["engine"] == {"kind": "postgres", "dsn_env": "ACME_PG", "schema": "sales"}
    assert pg not in (data_dir / "acme" / "workspace.json").read_text()
    assert at.table[0].value.iloc[0]["engine"] == "postgres"
    at = _form(at, "duckdb")
    assert "reads its own DuckDB file again" in unescaped(at.success[0].value)
    assert "engine" not in json.loads((data_dir / "acme" / "workspace.json").read_text())
    os.environ.pop("ACME_PG", None)


def test_spark_paths_are_checked_line_by_line(data_dir):
    at = AppTest.from_file(WORKSPACES, default_timeout=60).run()
    at.radio(key="eng_kind_acme").set_value("spark").run()
    at.text_area(key="eng_paths_acme").set_value("deals /data/deals.parquet")
    at.button(key="eng_save").click().run()
    assert not failures(at) and "line 1: write it as table = path" in unescaped(at.error[0].value)
    at.text_area(key="eng_paths_acme").set_value("secrets = /etc/shadow")
    at.button(key="eng_save").click().run()
    assert "unknown tables 'secrets'" in unescaped(at.error[0].value)
