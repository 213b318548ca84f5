"""``GET /api/streams`` and ``POST /api/streams/{name}/replay`` (SPEC section 11), admin role only.
A token limited to some tenants sees (and replays) only the streams of those tenants alone;
credentials never come back out (``Stream.public``)."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from receiver.admin.access import Access
from receiver.admin.http import Unrecorded, error
from receiver.filters import parse_time
from receiver.store.base import StoreUnavailable
from receiver.streams.config import Stream
from receiver.transport.errors import RetryLater

if TYPE_CHECKING:
    from receiver.admin.api import AdminAPI
    from receiver.streams.service import Streams


def visible(stream: Stream, access: Access) -> bool:
    if access.tenants is None:
        return True
    return "*" not in stream.tenants and set(stream.tenants) <= set(access.tenants)


class StreamRoutes:
    def __init__(self, api: AdminAPI, streams: Streams | None) -> None:
        self.api = api
        self.streams = streams

    async def list_streams(self, request: Request, access: Access) -> Response:
        if self.streams is None:
            return JSONResponse({"streams": []})
        items = await asyncio.to_thread(self.streams.status)
        shown = [i for i in items if visible(self.streams.configs[i["name"]], access)]
        return JSONResponse({"streams": shown})

    async def replay(self, request: Request, access: Access) -> Response:
        name = request.path_params["name"]
        stream = self.streams.configs.get(name) if self.streams is not None else None
        if self.streams is None or stream is None or not visible(stream, access):
            return error(404, "no such stream (or not visible to this token)")
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return error(400, "the body is not JSON")
        if not isinstance(body, dict) or not isinstance(body.get("since"), str):
            return error(400, 'send {"since": "<ISO 8601 time or now-7d>"}')
        since = parse_time("since", body["since"])
        streams = self.streams
        try:
            result = await asyncio.to_thread(streams.replay, name, since, access.name)
        except (RetryLater, StoreUnavailable) as exc:
            raise Unrecorded(f"the replay cannot be recorded in the audit log right now: {exc}") from exc
        return JSONResponse(result)

    def routes(self) -> list[BaseRoute]:
        only = self.api.admin_only
        return [
            Route("/api/streams", only(self.list_streams)),
            Route("/api/streams/{name}/replay", only(self.replay), methods=["POST"]),
        ]
