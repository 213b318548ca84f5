"""Tamper evidence: the checkpoint signing key and where checkpoints are published."""

from __future__ import annotations

from pydantic import Field, model_validator

from receiver.config.base import _Frozen

DEFAULT_CHECKPOINT_INTERVAL = 300.0


class PublishTarget(_Frozen):
    """One place every signed checkpoint is copied to: a directory or an HTTP endpoint."""

    dir: str | None = Field(
        default=None, description="directory (e.g. a WORM mount) that receives each checkpoint note as a file"
    )
    url: str | None = Field(
        default=None, description="HTTP(S) endpoint each checkpoint note is POSTed to (text/plain)"
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="extra HTTP headers for `url` (e.g. authorization)"
    )

    @model_validator(mode="after")
    def _one(self) -> PublishTarget:
        if (self.dir is None) == (self.url is None):
            raise ValueError("a publish target has exactly one of `dir` or `url`")
        return self


class Integrity(_Frozen):
    """The verifiable log (docs/INTEGRITY.md). With no ``key``, an embedded (chDB) store gets a
    key made on first start in ``<data dir>-integrity/keys/``, beside (not inside) the data
    directory, and checkpoints are published to ``<data dir>-integrity/checkpoints/``; a
    ClickHouse server store writes no checkpoints until a key is configured. Production:
    ``otel-audit keygen --out DIR`` and keep the private key away from the data."""

    key: str | None = Field(
        default=None,
        description="Ed25519 private key (PEM) that signs checkpoints; must be outside the store's data directory unless key_in_data_dir is true",
    )
    publish: tuple[PublishTarget, ...] = Field(
        default=(),
        description="where every signed checkpoint is also published: `{dir: PATH}` and/or `{url: URL, headers: {...}}`",
    )
    checkpoint_dir: str | None = Field(
        default=None, description="deprecated: same as one `publish: [{dir: ...}]` entry"
    )
    checkpoint_interval: float = Field(
        default=DEFAULT_CHECKPOINT_INTERVAL,
        gt=0,
        description="seconds between checkpoints of a log that grew (one is also written at shutdown)",
    )
    instance_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="this receiver's log suffix (origin otel-audit/<tenant>/<instance>); default: made once and kept in <data dir>/integrity/instance-id. Give each receiver its own.",
    )
    key_in_data_dir: bool = Field(
        default=False,
        description="allow (and default to) a signing key inside the store's data directory: anyone who can rewrite the data can then re-sign it",
    )

    def publish_targets(self) -> tuple[PublishTarget, ...]:
        extra = (PublishTarget(dir=self.checkpoint_dir),) if self.checkpoint_dir else ()
        return self.publish + extra
