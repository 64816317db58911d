"""Apache Spark as a workspace's engine: tables of a Spark database, or Parquet/Delta paths.

The session is made once per settings (`engines.remote_for`) from a master URL: `local[*]` runs
Spark inside the app's machine, `spark://host:7077`, `yarn` or `k8s://…` a cluster, and
`sc://host:15002` a Spark Connect server (pyspark's connect extras needed). Each workspace gets a
session of its own over the shared context (`newSession`), so its table views and current
database never meet another workspace's. Canonical tables come from `paths` (a temporary view per
table over its Parquet or Delta files) or from `database`.

The session's time zone is UTC, so timestamps read back as written. Each statement runs in a job
group that a timer cancels at the workspace's time limit.
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from typing import Any

import pyarrow as pa

from ..errors import QueryError
from ..schema import TABLES
from .base import EngineUnavailable, Remote

_CATALOGUE_TTL = 10.0
_TYPES = {"StringType": "VARCHAR", "VarcharType": "VARCHAR", "CharType": "VARCHAR", "DateType": "DATE",
          "TimestampType": "TIMESTAMP", "TimestampNTZType": "TIMESTAMP", "DoubleType": "DOUBLE",
          "FloatType": "FLOAT", "DecimalType": "DOUBLE", "LongType": "BIGINT", "IntegerType": "INTEGER",
          "ShortType": "SMALLINT", "ByteType": "SMALLINT", "BooleanType": "BOOLEAN"}
_context_lock = threading.Lock()
# The Spark context's settings when Spark runs in this process (a `local[…]` master). The session
# of a workspace (`newSession`) starts from the context's settings, so they hold there too.
LOCAL_CONFIG = {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "4",
                "spark.ui.showConsoleProgress": "false", "spark.sql.adaptive.enabled": "true",
                "spark.driver.extraJavaOptions": "-Dlog4j2.level=ERROR"}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines() or [type(exc).__name__])[0][:300]


class SparkRemote(Remote):
    kind = "spark"
    dialect = "spark"

    def __init__(self, master: str, database: str = "", paths: dict[str, str] | None = None) -> None:
        super().__init__()
        self.master, self.database, self.paths = master, database, dict(paths or {})
        self._session: Any = None
        self._lock = threading.Lock()
        self._catalogue: tuple[float, dict[str, list[tuple[str, str]]]] | None = None

    @property
    def label(self) -> str:
        where = f"database {self.database}" if self.database else f"{len(self.paths)} table path(s)"
        return f"Spark ({self.master}, {where})"

    # --- the session --------------------------------------------------------------------------

    def session(self) -> Any:
        with self._lock:
            if self._session is None:
                self._session = self._start()
            return self._session

    def _start(self) -> Any:
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            raise EngineUnavailable("Spark support needs the pyspark package: pip install pyspark") from None
        remote = self.master.startswith("sc://")
        if not remote and shutil.which("java") is None:
            raise EngineUnavailable("Spark needs a Java runtime on this machine: "
                                    "apt-get install openjdk-17-jre-headless")
        try:
            with _context_lock:
                builder = SparkSession.builder.appName("kpitree")
                builder = builder.remote(self.master) if remote else builder.master(self.master)
                if not remote:
                    for key, value in LOCAL_CONFIG.items():
                        builder = builder.config(key, value)
                shared = builder.getOrCreate()
            if not remote:
                shared.sparkContext.setLogLevel("FATAL")  # failures reach the user as a QueryError instead
            session = shared if remote else shared.newSession()
            session.conf.set("spark.sql.session.timeZone", "UTC")
            session.conf.set("spark.sql.ansi.enabled", "false")  # NULL on a division by zero, as DuckDB's NULLIF
        except Exception as exc:
            raise EngineUnavailable(f"cannot start Spark with master {self.master}: {_first_line(exc)}") from None
        try:
            if self.database:
                session.catalog.setCurrentDatabase(self.database)
            for table, path in self.paths.items():
                fmt = "delta" if path.rstrip("/").endswith("_delta_log") or "delta" in path.split("://")[0] else None
                reader = session.read.format(fmt) if fmt else session.read
                frame = reader.load(path) if fmt else reader.parquet(path)
                frame.createOrReplaceTempView(table)
        except Exception as exc:
            raise EngineUnavailable(f"Spark cannot read the workspace's tables: {_first_line(exc)}") from None
        return session

    def close(self) -> None:
        with self._lock:
            session, self._session = self._session, None
        if session is not None and self.master.startswith("sc://"):
            try:
                session.stop()
            except Exception:  # already gone
                pass

    # --- statements -----------------------------------------------------------------------------

    def catalogue(self) -> dict[str, list[tuple[str, str]]]:
        cached = self._catalogue
        if cached is not None and time.monotonic() - cached[0] < _CATALOGUE_TTL:
            return cached[1]
        session = self.session()
        found: dict[str, list[tuple[str, str]]] = {}
        try:
            names = {t.name for t in session.catalog.listTables()}
            for table in TABLES:
                if table in names:
                    schema = session.table(table).schema
                    found[table] = [(f.name, _TYPES.get(type(f.dataType).__name__, "VARCHAR")) for f in schema.fields]
        except Exception as exc:
            raise EngineUnavailable(f"Spark cannot list the workspace's tables: {_first_line(exc)}") from None
        self._catalogue = (time.monotonic(), found)
        return found

    def run(self, sql: str, timeout: float) -> pa.Table:
        session = self.session()
        group = f"kpitree-{uuid.uuid4().hex}"
        stopped = threading.Event()
        context = None if self.master.startswith("sc://") else session.sparkContext

        def cancel() -> None:
            stopped.set()
            if context is not None:
                context.cancelJobGroup(group)
            else:
                session.interruptAll()

        timer = threading.Timer(timeout, cancel)
        try:
            if context is not None:
                context.setJobGroup(group, "kpitree query", interruptOnCancel=True)
            timer.start()
            table = session.sql(sql).toArrow()
        except Exception as exc:
            if stopped.is_set():
                from ..workspace import QueryTimeout

                raise QueryTimeout.stopped(self.label, timeout) from None
            raise QueryError(f"Spark refused a query: {_first_line(exc)}") from None
        finally:
            timer.cancel()
        return _naive_timestamps(table)


def _naive_timestamps(table: pa.Table) -> pa.Table:
    """Timestamps with a zone (UTC, the session's) as plain ones, as a DuckDB TIMESTAMP reads."""
    fields = [pa.field(f.name, pa.timestamp(f.type.unit)) if pa.types.is_timestamp(f.type) and f.type.tz else f
              for f in table.schema]
    return table.cast(pa.schema(fields)) if fields != list(table.schema) else table
