"""The alert evaluator: every ``interval_seconds``, on the one receiver that holds the lease, each
rule reads the events stored since the previous evaluation (by position: each log's index only
grows), fires alerts once per group and window, records them as ``audit.alert.fired`` events and
hands them to the deliverer. The positions are kept in the store after every evaluation, so a
restart resumes where the last evaluation ended: nothing is missed, and an alert fired just before
a crash gets the same id again (derived from what fired it), which the store keeps once.

Leadership: several receivers on one ClickHouse server each insert a claim for the current lease
term; the earliest claim of the term leads it. Without compare-and-set in an append-only store a
claim that races the leader's first read can make two receivers evaluate one term; their alerts
carry the same ids (the store keeps one event each) and a webhook may then see an alert twice —
deliveries are at least once, keyed by the alert id.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import pyarrow as pa

from receiver.alerts.config import Alerts, Rule
from receiver.alerts.deliverer import Deliverer
from receiver.alerts.metrics import AlertMetrics
from receiver.alerts.model import Alert, alert_id, fired_request
from receiver.alerts.pack import effective_rules
from receiver.store import alerts_sql as q
from receiver.store.sql import Statement

log = logging.getLogger("otel_audit.alerts")
UTC = dt.timezone.utc
LEASE_SECONDS = 60
#: silence rules look this far back for the sources they watch when a receiver takes over
SILENCE_LOOKBACK_WINDOWS = 4

Record = Callable[[Any], object]


class Store(Protocol):
    database: str

    def query_table(self, statement: Statement) -> pa.Table: ...
    def insert_into(self, table_name: str, table: pa.Table) -> None: ...


def _group_key(group: dict[str, str]) -> str:
    return json.dumps(group, sort_keys=True, separators=(",", ":"))


class Evaluator:
    def __init__(
        self,
        store: Store,
        config: Alerts,
        record: Record,
        metrics: AlertMetrics,
        holder: str,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(UTC),
    ) -> None:
        self.store = store
        self.config = config
        self.rules = effective_rules(config)
        self._record = record
        self.metrics = metrics
        self.holder = holder
        self.clock = clock
        self.deliverer = Deliverer(store, config, metrics, clock)
        self._secret = b""
        self._leading = False
        self._claimed_term = -1
        self._watermarks: dict[str, int] = {}
        #: recent alerts by id: suppression of threshold rules, and no alert fired twice
        self._fired: dict[str, Alert] = {}
        #: silence rules: (rule, tenant, group key) -> the newest matching event seen
        self._last_seen: dict[tuple[str, str, str], tuple[dt.datetime, dict[str, str]]] = {}
        self._raise_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- leadership --------------------------------------------------------------------
    def _lead(self, now: dt.datetime) -> bool:
        term = int(now.timestamp() // LEASE_SECONDS)
        if term != self._claimed_term:
            self.store.insert_into(q.STATE_TABLE, q.state_table("lease", [(str(term), self.holder)], now))
            self._claimed_term = term
        claims = self.store.query_table(q.lease_claims(self.store.database, term)).to_pylist()
        return bool(claims) and claims[0]["holder"] == self.holder

    def _load_secret(self, now: dt.datetime) -> None:
        secret_rows = self.store.query_table(q.state(self.store.database, "secret")).to_pylist()
        if not secret_rows:
            self.store.insert_into(
                q.STATE_TABLE, q.state_table("secret", [("alert-id", secrets.token_hex(32))], now)
            )
            secret_rows = self.store.query_table(q.state(self.store.database, "secret")).to_pylist()
        self._secret = bytes.fromhex(secret_rows[0]["value"])

    def _take_over(self, now: dt.datetime) -> None:
        """Load what the previous leader (or this receiver before a restart) left in the store."""
        self._load_secret(now)
        marks: dict[str, int] = {}
        for row in self.store.query_table(q.state(self.store.database, "position")).to_pylist():
            marks[row["key"]] = max(marks.get(row["key"], 0), int(row["value"]))
        if not marks:
            # the first evaluation ever: start at the present, never alert on the stored history
            marks = self._heads({})
            if marks:
                self._save_positions(marks, now)
        self._watermarks = marks
        horizon = now - dt.timedelta(seconds=self._memory_seconds())
        self._fired = {}
        for row in self.store.query_table(q.fired_since(self.store.database, horizon)).to_pylist():
            alert = Alert.from_event(row["id"], row["tenant"], dict(row["attributes"]), row["created_at"])
            self._fired[alert.id] = alert
        self._last_seen = {}
        for rule in self.rules:
            if rule.kind == "silence":
                since = now - dt.timedelta(seconds=rule.window * SILENCE_LOOKBACK_WINDOWS)
                statement = q.last_seen(self.store.database, self._cond(rule), rule.group_by, since)
                for row in self.store.query_table(statement).to_pylist():
                    self._saw(rule, row, row["last_at"])
        self.deliverer.load_pending(now)

    # -- one evaluation ----------------------------------------------------------------
    def tick(self) -> list[Alert]:
        now = self.clock()
        if not self._lead(now):
            self._leading = False
            return []
        if not self._leading:
            self._take_over(now)
            self._leading = True
        started = time.perf_counter()
        heads = self._heads(self._watermarks)
        alerts: list[Alert] = []
        for rule in self.rules:
            alerts += self._evaluate(rule, heads, now)
        fresh: dict[str, Alert] = {}
        for alert in alerts:
            if alert.id not in self._fired:
                fresh[alert.id] = alert
        if fresh:
            # durable (journal or store) before the positions move past the events that fired it
            self._record(fired_request(list(fresh.values())))
            for alert in fresh.values():
                self._fired[alert.id] = alert
                self.metrics.fired.labels(alert.rule).inc()
                self.deliverer.enqueue(alert)
                log.warning("alert %s fired for tenant %s: %s", alert.rule, alert.tenant, alert.summary)
        moved = {k: v for k, v in heads.items() if v > self._watermarks.get(k, 0)}
        if moved:
            self._save_positions(moved, now)
            self._watermarks.update(moved)
        self._forget(now)
        self.metrics.evaluation_seconds.observe(time.perf_counter() - started)
        return list(fresh.values())

    def _heads(self, watermarks: dict[str, int]) -> dict[str, int]:
        rows = self.store.query_table(q.heads(self.store.database, watermarks)).to_pylist()
        return {r["log"]: int(r["head"]) for r in rows if int(r["head"]) > watermarks.get(r["log"], 0)}

    def _save_positions(self, marks: dict[str, int], now: dt.datetime) -> None:
        items = [(k, str(v)) for k, v in sorted(marks.items())]
        self.store.insert_into(q.STATE_TABLE, q.state_table("position", items, now))

    def _cond(self, rule: Rule) -> Statement:
        return q.rule_where(rule.match, rule.tenants)

    def _memory_seconds(self) -> float:
        windows = [r.window for r in self.rules] or [0.0]
        return max(self.config.give_up_after, 2 * max(windows), 86400.0)

    def _forget(self, now: dt.datetime) -> None:
        horizon = now - dt.timedelta(seconds=self._memory_seconds())
        for key in [k for k, a in self._fired.items() if a.fired_at < horizon]:
            del self._fired[key]

    def _alert(
        self,
        rule: Rule,
        tenant: str,
        group: dict[str, str],
        key: str,
        start: dt.datetime,
        end: dt.datetime,
        count: int,
        samples: list[str],
        now: dt.datetime,
        summary: str,
    ) -> Alert:
        identity = "|".join((rule.name, tenant, _group_key(group), key))
        return Alert(
            id=alert_id(self._secret, identity),
            rule=rule.name,
            tenant=tenant,
            severity=rule.severity,
            window_start=start,
            window_end=end,
            count=count,
            group=group,
            sample_event_ids=tuple(samples),
            fired_at=now,
            destinations=rule.destinations,
            summary=summary,
        )

    def _evaluate(self, rule: Rule, heads: dict[str, int], now: dt.datetime) -> list[Alert]:
        if rule.kind == "sql":
            return self._sql_rule(rule, now)
        rows: list[dict[str, Any]] = []
        if heads:
            statement = q.new_matches(
                self.store.database, self._cond(rule), rule.group_by, self._watermarks, heads
            )
            rows = self.store.query_table(statement).to_pylist()
        if rule.kind == "match":
            return [
                self._alert(
                    rule,
                    r["tenant"],
                    self._group(rule, r),
                    r["first_position"],
                    r["first_at"],
                    r["last_at"],
                    int(r["n"]),
                    list(r["samples"]),
                    now,
                    f"{r['n']} event(s) matched {rule.name}",
                )
                for r in rows
            ]
        if rule.kind == "threshold":
            return self._threshold(rule, rows, heads, now)
        for r in rows:
            self._saw(rule, r, r["last_at"])
        return self._silence(rule, now)

    @staticmethod
    def _group(rule: Rule, row: dict[str, Any]) -> dict[str, str]:
        return {c: row[f"g_{c}"] for c in rule.group_by}

    def _threshold(
        self, rule: Rule, rows: list[dict[str, Any]], heads: dict[str, int], now: dt.datetime
    ) -> list[Alert]:
        if not rows:
            return []
        window = dt.timedelta(seconds=rule.window)
        low = min(r["last_at"] for r in rows) - window
        statement = q.window_counts(
            self.store.database,
            self._cond(rule),
            rule.group_by,
            self._watermarks,
            heads,
            int(rule.window * 1_000_000),
            low,
        )
        out = []
        for row in self.store.query_table(statement).to_pylist():
            if int(row["cnt"]) < rule.threshold:
                continue
            group = self._group(rule, row)
            end: dt.datetime = row["last_at"]
            start = end - window
            if any(  # once per group and window
                f.rule == rule.name
                and f.tenant == row["tenant"]
                and dict(f.group) == group
                and f.window_end > start
                for f in self._fired.values()
            ):
                continue
            out.append(
                self._alert(
                    rule,
                    row["tenant"],
                    group,
                    row["first_position"],
                    start,
                    end,
                    int(row["cnt"]),
                    list(row["sample_ids"]),
                    now,
                    f"{row['cnt']} matching events within {rule.window:g} s (threshold {rule.threshold})",
                )
            )
        return out

    def _saw(self, rule: Rule, row: dict[str, Any], when: dt.datetime) -> None:
        group = self._group(rule, row)
        key = (rule.name, row["tenant"], _group_key(group))
        seen = self._last_seen.get(key)
        if seen is None or when > seen[0]:
            self._last_seen[key] = (when, group)

    def _silence(self, rule: Rule, now: dt.datetime) -> list[Alert]:
        out = []
        for (name, tenant, _), (last, group) in self._last_seen.items():
            if name != rule.name or (now - last).total_seconds() < rule.window:
                continue
            out.append(
                self._alert(
                    rule,
                    tenant,
                    group,
                    last.isoformat(),
                    last,
                    now,
                    0,
                    [],
                    now,
                    f"no matching events for {rule.window:g} s (the last at {last.isoformat()})",
                )
            )
        return out

    def _sql_rule(self, rule: Rule, now: dt.datetime) -> list[Alert]:
        start = now - dt.timedelta(seconds=rule.window)
        bucket = str(int(now.timestamp() // rule.window))
        out = []
        for row in self.store.query_table(q.custom_query(rule.query, start, now)).to_pylist():
            tenant = str(row.pop("tenant_id", ""))
            if not tenant or ("*" not in rule.tenants and tenant not in rule.tenants):
                continue
            count = int(row.pop("count", 1) or 0)
            group = {k: str(v) for k, v in sorted(row.items())}
            out.append(
                self._alert(rule, tenant, group, bucket, start, now, count, [], now, f"{rule.name}: {count}")
            )
        return out

    # -- alerts raised by other parts of the receiver (log streams' backlog) -------------
    def raise_alert(
        self,
        rule: str,
        tenant: str,
        group: dict[str, str],
        key: str,
        window: tuple[dt.datetime, dt.datetime],
        count: int,
        severity: str,
        destinations: tuple[str, ...],
        summary: str,
    ) -> Alert | None:
        """Record and deliver one alert that no rule evaluates (a built-in condition), on
        whichever receiver detects it. Its id derives from (rule, tenant, group, key) like a
        rule's, so the same condition raised again (a restart, another receiver) is the same
        alert: fired once here, stored once. Returns None when it fired already."""
        now = self.clock()
        with self._raise_lock:
            if not self._secret:
                self._load_secret(now)
            alert = Alert(
                id=alert_id(self._secret, "|".join((rule, tenant, _group_key(group), key))),
                rule=rule,
                tenant=tenant,
                severity=severity,
                window_start=window[0],
                window_end=window[1],
                count=count,
                group=group,
                sample_event_ids=(),
                fired_at=now,
                destinations=destinations,
                summary=summary,
            )
            if alert.id in self._fired:
                return None
            self._record(fired_request([alert]))
            self._fired[alert.id] = alert
        self.metrics.fired.labels(rule).inc()
        self.deliverer.enqueue(alert)
        log.warning("alert %s fired for tenant %s: %s", rule, tenant, summary)
        return alert

    # -- the thread ----------------------------------------------------------------------
    def start(self) -> None:
        self.deliverer.start()
        self._thread = threading.Thread(target=self._loop, name="otel-audit-alerts", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.config.interval_seconds):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - a failed evaluation is retried next interval
                self.metrics.evaluation_errors.inc()
                log.exception("alert evaluation failed; retried in %s s", self.config.interval_seconds)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.deliverer.stop()


def build_evaluator(
    store: Store, config: Alerts, record: Record, registry: Any, instance_id: str
) -> Evaluator | None:
    """The receiver's evaluator (None when ``alerts.enabled`` is false). The lease holder names
    this process, so two processes sharing an instance id still never both lead."""
    if not config.enabled:
        return None
    holder = f"{instance_id}/{os.getpid()}-{secrets.token_hex(4)}"
    return Evaluator(store, config, record, AlertMetrics(registry), holder)
