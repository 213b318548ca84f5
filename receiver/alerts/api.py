"""``GET /api/alerts`` and ``POST /api/alerts/{id}/review`` (SPEC section 10): the alerts a token's
tenants fired, their reviews and deliveries, and the recorded review an assessor asks for under
PCI DSS 10.4 (``audit.alert.reviewed``, with the reviewer and the note)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from receiver.admin.access import Access
from receiver.admin.http import Unrecorded, error, one_value
from receiver.alerts.model import FIRED_EVENT, Alert, reviewed_request
from receiver.filters import FilterError, multi_params, parse_limit
from receiver.model import iso_utc
from receiver.store import alerts_sql as q
from receiver.store.base import StoreUnavailable
from receiver.transport.errors import RetryLater

if TYPE_CHECKING:
    from receiver.admin.api import AdminAPI
    from receiver.alerts.evaluator import Evaluator

UTC = dt.timezone.utc
STATUSES = ("acknowledged", "reviewed")
MAX_NOTE = 4000
#: the search filter that reads each group column
_FILTER_OF = {
    "user_id": "user",
    "ip_address": "ip",
    "resource_type": "resource_type",
    "resource_id": "resource_id",
    "action": "action",
    "outcome": "outcome",
    "event_name": "event_name",
}


def events_query(alert: Alert, match: dict[str, Any] | None) -> dict[str, Any]:
    """The /api/events parameters that list the events behind an alert."""
    params: dict[str, Any] = {k: v for k, v in (match or {}).items() if k != "service_name"}
    params["tenant"] = alert.tenant
    for column, value in alert.group.items():
        if column in _FILTER_OF:
            params[_FILTER_OF[column]] = value
    params["since"] = iso_utc(alert.window_start)
    params["until"] = iso_utc(alert.window_end + dt.timedelta(microseconds=1))
    return params


class AlertRoutes:
    def __init__(self, api: AdminAPI, evaluator: Evaluator | None) -> None:
        self.api = api
        self.evaluator = evaluator
        self.rules = {r.name: r for r in evaluator.rules} if evaluator is not None else {}

    def _load(self, access: Access, since: dt.datetime, limit: int) -> list[dict[str, Any]]:
        rows = self.api.store.query_table(
            q.alert_events(self.api.store.database, access.tenants, since, limit)
        )
        reviews: dict[str, list[dict[str, Any]]] = {}
        alerts: list[Alert] = []
        for row in rows.to_pylist():
            attributes = dict(row["attributes"])
            if row["event_name"] == FIRED_EVENT:
                alerts.append(Alert.from_event(row["id"], row["tenant"], attributes, row["created_at"]))
            else:
                reviews.setdefault(row["resource_id"], []).append(
                    {
                        "reviewer": row["user_id"],
                        "status": attributes.get("alert.status", "reviewed"),
                        "note": row["reason"],
                        "at": iso_utc(row["created_at"]),
                    }
                )
        pending = self.evaluator.deliverer.status() if self.evaluator is not None else {}
        out = []
        for alert in alerts:
            history = sorted(reviews.get(alert.id, []), key=lambda r: r["at"])
            rule = self.rules.get(alert.rule)
            out.append(
                {
                    **alert.body(),
                    "status": history[-1]["status"] if history else "open",
                    "reviews": history,
                    "destinations": list(alert.destinations),
                    "deliveries_pending": pending.get(alert.id, []),
                    "events_query": events_query(alert, rule.match if rule else None),
                }
            )
        return out

    async def list_alerts(self, request: Request, access: Access) -> Response:
        params = multi_params(request.query_params.multi_items())
        limit = parse_limit(one_value(params.pop("limit", None)))
        status = one_value(params.pop("status", None)) or "all"
        if status not in ("all", "open", *STATUSES):
            raise FilterError("status: one of all, open, acknowledged, reviewed")
        rule = one_value(params.pop("rule", None))
        flt = self.api.parse_scoped({k: v for k, v in params.items() if k in ("tenant", "since")}, access)
        unknown = sorted(set(params) - {"tenant", "since"})
        if unknown:
            raise FilterError(f"unknown parameter(s): {', '.join(unknown)}")
        if flt.visible_nothing():
            return await self.api.refuse_other_tenant(request, access, flt, "read")
        since = flt.since or dt.datetime.now(UTC) - dt.timedelta(days=30)
        alerts = await asyncio.to_thread(self._load, access, since, 1000)
        tenant = flt.single_tenant
        alerts = [
            a
            for a in alerts
            if (status == "all" or a["status"] == status)
            and (rule is None or a["rule"] == rule)
            and (tenant is None or a["tenant"] == tenant)
        ][:limit]
        await self.api.record(
            request,
            access,
            "read",
            tuple(sorted({a["tenant"] for a in alerts})) or self._scope(access),
            resource_id="alerts",
            reason=f"listed alerts: {len(alerts)} returned",
        )
        return JSONResponse({"alerts": alerts})

    @staticmethod
    def _scope(access: Access) -> tuple[str, ...]:
        from receiver.admin.trail import tenants_read

        return tenants_read(access, None)

    async def review(self, request: Request, access: Access) -> Response:
        try:
            alert_id = str(uuid.UUID(request.path_params["alert_id"]))
        except ValueError:
            return error(400, "alert id is not a UUID")
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return error(415, 'send the review as application/json: {"note": "..."}')
        try:
            body = json.loads(await request.body())
        except ValueError:
            return error(400, "the body is not JSON")
        if not isinstance(body, dict):
            return error(400, "the body must be a JSON object")
        note = body.get("note")
        status = body.get("status", "reviewed")
        if not isinstance(note, str) or not note.strip():
            return error(400, "note: required, the reviewer's finding")
        if len(note) > MAX_NOTE:
            return error(400, f"note: longer than {MAX_NOTE} characters")
        if status not in STATUSES:
            return error(400, "status: acknowledged or reviewed")
        alerts = await asyncio.to_thread(self._load, access, dt.datetime(1970, 1, 1, tzinfo=UTC), 100_000)
        alert = next((a for a in alerts if a["id"] == alert_id), None)
        if alert is None:
            return error(404, "no such alert (or not visible to this token)")
        client = request.client.host if request.client else ""
        record = reviewed_request(
            alert_id, alert["tenant"], alert["rule"], access.name, note.strip(), status, client
        )
        try:
            await asyncio.to_thread(self.api.trail.ingest, record)
        except (RetryLater, StoreUnavailable) as exc:
            raise Unrecorded(f"the review cannot be recorded in the audit log right now: {exc}") from exc
        return JSONResponse({"id": alert_id, "status": status, "reviewer": access.name}, status_code=201)

    def routes(self) -> list[BaseRoute]:
        auth = self.api.authenticated
        return [
            Route("/api/alerts", auth(self.list_alerts)),
            Route("/api/alerts/{alert_id}/review", auth(self.review), methods=["POST"]),
        ]
