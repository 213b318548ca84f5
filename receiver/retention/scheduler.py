"""The retention job inside ``serve``: every ``retention.interval_seconds`` (the first run a
minute after start at the latest, so a restart loop does not hammer the store).

A failed run is logged and retried at the next interval; it never stops the receiver.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from receiver.config import Config
from receiver.integrity.checkpoints import Checkpointer
from receiver.integrity.setup import resolve
from receiver.retention.events import Ingest, SystemEvents, id_key_for
from receiver.retention.service import RetentionService
from receiver.store.base import AuditStore

log = logging.getLogger("otel_audit.retention")
FIRST_RUN_AFTER_SECONDS = 60.0


def build_retention(store: AuditStore, config: Config, ingest: Ingest) -> RetentionService:
    """The service over ``store``; its own audit events go through ``ingest`` (the consumer's);
    chains are sealed with a signed checkpoint at every archive boundary when a key exists."""
    events = SystemEvents(ingest, id_key_for(store))
    warned: list[bool] = []

    def seal(tenants: tuple[str, ...]) -> list[dict[str, Any]]:
        settings = resolve(config.integrity, store, create_key=False)
        if settings.signer is None:  # no signing key: archive without checkpoints, say so once
            if not warned:
                log.warning("archiving without signed checkpoints: no signing key")
                warned.append(True)
            return []
        sealer = Checkpointer(store, settings.signer, settings.targets)
        out = []
        for summary in store.log_summaries(tenants):
            if summary.origin.startswith("otel-audit/") and summary.origin.endswith(
                "/" + settings.instance_id
            ):
                note = sealer.seal(summary.origin, summary.tenant_id, force=True)
                if note:
                    out.append({"chain_id": summary.origin, "tenant_id": summary.tenant_id, "note": note})
        return out

    return RetentionService(store, config, events, seal)  # type: ignore[arg-type]


class RetentionScheduler:
    def __init__(self, service: RetentionService, interval_seconds: float) -> None:
        self.service = service
        self.interval = interval_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="otel-audit-retention", daemon=True)
        self.runs = 0

    def start(self) -> None:
        if self.interval > 0:
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        if self._stop.wait(min(self.interval, FIRST_RUN_AFTER_SECONDS)):
            return
        while not self._stop.is_set():
            try:
                report = self.service.run()
                self.runs += 1
                if report.months_archived or report.archive_days_deleted:
                    log.info(
                        "retention: archived %s, deleted archive days %s",
                        report.months_archived,
                        report.archive_days_deleted,
                    )
            except Exception:  # noqa: BLE001 - logged; the next interval retries
                log.exception("retention run failed")
            self._stop.wait(self.interval)
