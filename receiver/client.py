"""A small client of a running ``serve``'s admin API, for the CLI's ``--server`` mode."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from receiver.filters import MAX_LIMIT


class AdminClientError(Exception):
    pass


class AdminClient:
    def __init__(self, base_url: str, token: str | None, timeout: float = 30.0) -> None:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout)

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        return self.call("GET", path, params=params)

    def call(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None) -> Any:
        """One admin API request; a non-200 answer becomes AdminClientError with its reason."""
        try:
            response = self._http.request(method, path, params=params, json=body)
        except httpx.HTTPError as exc:
            raise AdminClientError(f"cannot reach {self._http.base_url}: {exc}") from exc
        if response.status_code != 200:
            try:
                reason = response.json().get("error", response.text)
            except ValueError:
                reason = response.text[:200]
            raise AdminClientError(f"server answered {response.status_code}: {reason}")
        return response.json()

    def iter_events(self, params: dict[str, str], limit: int) -> Iterator[dict[str, Any]]:
        """Follow next_cursor until ``limit`` events or the end."""
        remaining = limit
        cursor: str | None = None
        while remaining > 0:
            page_params: dict[str, Any] = dict(params, limit=min(remaining, MAX_LIMIT))
            if cursor:
                page_params["cursor"] = cursor
            page = self._get("/api/events", page_params)
            yield from page["events"]
            remaining -= len(page["events"])
            cursor = page.get("next_cursor")
            if not cursor or not page["events"]:
                return

    def verify_report(self, params: dict[str, str]) -> dict[str, Any]:
        """GET /api/verify: ``{"tenants": [...], "findings": [...]}``."""
        return dict(self._get("/api/verify", params))

    def verify(self, params: dict[str, str]) -> list[dict[str, Any]]:
        """GET /api/verify: one result per tenant the token may see."""
        return list(self._get("/api/verify", params)["tenants"])

    def close(self) -> None:
        self._http.close()
