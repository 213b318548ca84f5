"""Where a receiver's integrity settings come from: the ``integrity:`` config section, with
defaults beside an embedded store's data (docs/INTEGRITY.md), and the periodic sealer."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from receiver.config import ConfigError, Integrity
from receiver.integrity.chain import load_instance_id
from receiver.integrity.checkpoints import (
    PRIVATE_KEY_FILE,
    Checkpointer,
    PublishTarget,
    Signer,
    generate_key,
    load_verifiers,
    private_dir,
)
from receiver.integrity.note import Verifier
from receiver.store import data_subdirectory
from receiver.store.sql import DEFAULT_DATABASE

log = logging.getLogger("otel_audit.integrity")


@dataclass(frozen=True, slots=True)
class IntegritySettings:
    instance_id: str
    signer: Signer | None
    targets: tuple[PublishTarget, ...]
    key_path: Path | None = None
    key_in_data_dir: bool = False


def data_dir(store: Any) -> Path | None:
    path = getattr(store, "path", None)
    return Path(path).resolve() if path else None


def state_dir(store: Any) -> Path | None:
    """``<data dir>/integrity`` (instance id; not secret) for an embedded store, per database."""
    path = data_subdirectory(store, "integrity")
    return path.resolve() if path is not None else None


def beside_dir(store: Any) -> Path | None:
    """``<data dir>-integrity``: the default home of the key and the published copy, beside
    (not inside) the data directory, so a copy of the data is not a copy of the key."""
    data = data_dir(store)
    if data is None:
        return None
    database = getattr(store, "database", DEFAULT_DATABASE)
    base = data.with_name(data.name + "-integrity")
    return base if database == DEFAULT_DATABASE else base / database


def inside(path: Path, directory: Path | None) -> bool:
    if directory is None:
        return False
    return path.resolve().is_relative_to(directory)


def default_key_path(integrity: Integrity, store: Any) -> Path | None:
    if integrity.key:
        return Path(integrity.key)
    if integrity.key_in_data_dir:
        local = state_dir(store)
        return local / "keys" / PRIVATE_KEY_FILE if local is not None else None
    beside = beside_dir(store)
    return beside / "keys" / PRIVATE_KEY_FILE if beside is not None else None


def publish_targets(integrity: Integrity, store: Any) -> tuple[PublishTarget, ...]:
    configured = tuple(
        PublishTarget(directory=t.dir, url=t.url, headers=tuple(t.headers.items()))
        for t in integrity.publish_targets()
    )
    if configured:
        return configured
    beside = beside_dir(store)
    return (PublishTarget(directory=str(beside / "checkpoints")),) if beside is not None else ()


def resolve(integrity: Integrity, store: Any, *, create_key: bool = True) -> IntegritySettings:
    local = state_dir(store)
    instance_id = integrity.instance_id or load_instance_id(local or Path.cwd() / "otel-audit-integrity")
    key_path = default_key_path(integrity, store)
    in_data = key_path is not None and inside(key_path, data_dir(store))
    if in_data and not integrity.key_in_data_dir:
        raise ConfigError(
            f"integrity.key {key_path} is inside the store's data directory: anyone who can rewrite the"
            " data could re-sign it. Move it, or set integrity.key_in_data_dir: true to accept that."
        )
    signer: Signer | None = None
    if key_path is not None:
        if not key_path.exists() and not integrity.key and create_key:
            private_dir(key_path.parent.parent)  # <data dir>-integrity (or <data dir>/integrity)
            generate_key(key_path.parent)
            log.warning(
                "made a checkpoint signing key at %s; in production run `otel-audit keygen`, keep the"
                " private key on another machine or volume (integrity.key) and publish checkpoints"
                " to a place the receiver's host cannot rewrite (integrity.publish)",
                key_path,
            )
        try:
            signer = Signer.from_file(key_path) if key_path.exists() or integrity.key else None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"integrity.key {key_path}: cannot use it as a signing key: {exc}") from exc
    else:
        log.warning("integrity.key is not set: no signed checkpoints will be written")
    return IntegritySettings(instance_id, signer, publish_targets(integrity, store), key_path, in_data)


def default_verifiers(integrity: Integrity, store: Any) -> list[Verifier]:
    """The keys ``verify`` accepts when none are given: the signing key's, and every public key
    (``*.pub``: PEM and/or a verifier key line) beside it — after a rotation, put the old key's
    ``.pub`` next to the new key and its checkpoints keep verifying."""
    key_path = default_key_path(integrity, store)
    if key_path is None or not key_path.exists():
        return []
    verifiers = load_verifiers(str(key_path))
    for public in sorted(key_path.parent.glob("*.pub")):
        try:
            found = load_verifiers(str(public))
        except (OSError, ValueError) as exc:
            log.warning("ignoring %s: %s", public, exc)
            continue
        verifiers += [v for v in found if v not in verifiers]
    return verifiers


def default_published_dirs(integrity: Integrity, store: Any) -> list[Path]:
    return [Path(t.directory) for t in publish_targets(integrity, store) if t.directory is not None]


class CheckpointScheduler:
    """Seals every log of this instance that grew, every ``interval`` seconds and at stop."""

    def __init__(self, store: Any, settings: IntegritySettings, interval: float) -> None:
        self._store = store
        self._settings = settings
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="otel-audit-checkpoints", daemon=True)
        self.checkpointer = (
            Checkpointer(store, settings.signer, settings.targets) if settings.signer is not None else None
        )

    def start(self) -> None:
        if self.checkpointer is not None:
            self._thread.start()

    def seal_all(self) -> int:
        """One checkpoint per log of this instance that grew; returns how many were written."""
        if self.checkpointer is None:
            return 0
        written = 0
        origins = {t.origin for t in self._store.last_tiles(self._settings.instance_id)}
        for origin in sorted(origins):
            tenant = origin.split("/", 1)[1].rpartition("/")[0]
            if self.checkpointer.seal(origin, tenant) is not None:
                written += 1
        return written

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.seal_all()
            except Exception:  # noqa: BLE001 - keep sealing on the next tick
                log.exception("writing checkpoints failed; retrying in %.0f s", self._interval)

    def stop(self) -> None:
        """Stop the timer; the caller seals once more after the last insert."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)
