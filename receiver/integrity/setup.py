"""Where a receiver's integrity settings come from: the ``integrity:`` config section, with
defaults next to an embedded store's data (docs/INTEGRITY.md), and the periodic sealer."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from receiver.config import ConfigError, Integrity
from receiver.integrity.chain import load_instance_id
from receiver.integrity.checkpoints import (
    PRIVATE_KEY_FILE,
    Checkpoint,
    Signer,
    generate_key,
    load_public_key,
    write_checkpoint,
)
from receiver.store.sql import DEFAULT_DATABASE

log = logging.getLogger("otel_audit.integrity")


@dataclass(frozen=True, slots=True)
class IntegritySettings:
    instance_id: str
    signer: Signer | None
    checkpoint_dir: Path | None


def state_dir(store: Any) -> Path | None:
    """``<data dir>/integrity`` for an embedded store (``…/integrity/<database>`` for a database
    other than the default: each database has its own chains); None for a server store."""
    path = getattr(store, "path", None)
    if not path:
        return None
    database = getattr(store, "database", DEFAULT_DATABASE)
    base = Path(path) / "integrity"
    return base if database == DEFAULT_DATABASE else base / database


def resolve(integrity: Integrity, store: Any, *, create_key: bool = True) -> IntegritySettings:
    local = state_dir(store)
    instance_id = integrity.instance_id or load_instance_id(local or Path.cwd() / "otel-audit-integrity")
    signer: Signer | None = None
    if integrity.key:
        try:
            signer = Signer.from_file(integrity.key)
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"integrity.key {integrity.key}: cannot use it as a signing key: {exc}"
            ) from exc
    elif local is not None:
        key_path = local / "keys" / PRIVATE_KEY_FILE
        if not key_path.exists() and create_key:
            generate_key(key_path.parent)
            log.warning(
                "made a checkpoint signing key at %s; in production run `otel-audit keygen` and "
                "keep the private key away from the data (integrity.key)",
                key_path,
            )
        if key_path.exists():
            signer = Signer.from_file(key_path)
    else:
        log.warning("integrity.key is not set: no signed checkpoints will be written")
    directory = Path(integrity.checkpoint_dir) if integrity.checkpoint_dir else None
    if directory is None and local is not None:
        directory = local / "checkpoints"
    return IntegritySettings(instance_id, signer, directory)


def default_public_key(integrity: Integrity, store: Any) -> Ed25519PublicKey | None:
    """The key ``verify`` checks signatures with when --public-key is not given."""
    if integrity.key:
        return load_public_key(integrity.key)
    local = state_dir(store)
    if local is not None and (local / "keys" / PRIVATE_KEY_FILE).exists():
        return load_public_key(local / "keys" / PRIVATE_KEY_FILE)
    return None


def default_checkpoint_dir(integrity: Integrity, store: Any) -> Path | None:
    if integrity.checkpoint_dir:
        return Path(integrity.checkpoint_dir)
    local = state_dir(store)
    return local / "checkpoints" if local is not None else None


class CheckpointScheduler:
    """Seals every chain of this instance that grew, every ``interval`` seconds and at stop."""

    def __init__(self, store: Any, settings: IntegritySettings, interval: float) -> None:
        self._store = store
        self._settings = settings
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="otel-audit-checkpoints", daemon=True)

    def start(self) -> None:
        if self._settings.signer is not None:
            self._thread.start()

    def seal_all(self) -> int:
        """One checkpoint per chain of this instance that grew; returns how many were written."""
        signer = self._settings.signer
        if signer is None:
            return 0
        written = 0
        for chain_id in self._store.chain_heads(self._settings.instance_id):
            if write_checkpoint(self._store, signer, chain_id, self._settings.checkpoint_dir) is not None:
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


def seal_chains(
    store: Any, integrity: Integrity, tenants: tuple[str, ...] | None = None, *, force: bool = True
) -> list[Checkpoint]:
    """Seal every chain of ``tenants`` (None: all), whichever receiver wrote it: the call for
    an archive boundary (retention). Raises RuntimeError when no signing key is configured."""
    local = state_dir(store)
    key_path = integrity.key or (str(local / "keys" / PRIVATE_KEY_FILE) if local is not None else None)
    if key_path is None or not Path(key_path).exists():
        raise RuntimeError("no checkpoint signing key: set integrity.key (otel-audit keygen)")
    signer = Signer.from_file(key_path)
    directory = default_checkpoint_dir(integrity, store)
    sealed = []
    for summary in store.chain_summaries(tenants):
        checkpoint = write_checkpoint(store, signer, summary.chain_id, directory, force=force)
        if checkpoint is not None:
            sealed.append(checkpoint)
    return sealed
