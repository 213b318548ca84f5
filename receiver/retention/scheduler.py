"""The retention job inside ``serve``: every ``retention.interval_seconds`` (the first run a
minute after start at the latest, so a restart loop does not hammer the store).

A failed run is logged and retried at the next interval; it never stops the receiver.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict
from typing import Any

from receiver.config import Config
from receiver.integrity.setup import seal_chains
from receiver.retention.events import Ingest, SystemEvents, id_key_for
from receiver.retention.service import RetentionService
from receiver.store.base import AuditStore

log = logging.getLogger("otel_audit.retention")
FIRST_RUN_AFTER_SECONDS = 60.0
#: what a manifest keeps of each checkpoint (enough to find and check it)
CHECKPOINT_FIELDS = ("chain_id", "tenant_id", "last_seq", "last_hash", "created_at", "key_id", "signature")


def build_retention(store: AuditStore, config: Config, ingest: Ingest) -> RetentionService:
    """The service over ``store``; its own audit events go through ``ingest`` (the consumer's);
    chains are sealed with a signed checkpoint at every archive boundary when a key exists."""
    events = SystemEvents(ingest, id_key_for(store))
    warned: list[bool] = []

    def seal(tenants: tuple[str, ...]) -> list[dict[str, Any]]:
        try:
            sealed = seal_chains(store, config.integrity, tenants, force=True)
        except RuntimeError as exc:  # no signing key: archive without checkpoints, say so once
            if not warned:
                log.warning("archiving without signed checkpoints: %s", exc)
                warned.append(True)
            return []
        return [{k: v for k, v in asdict(c).items() if k in CHECKPOINT_FIELDS} for c in sealed]

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
