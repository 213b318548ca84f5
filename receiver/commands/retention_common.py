"""What ``retention``, ``restore`` and ``hold`` share: the retention service over a store opened
here (with its own group-commit writer for the job's audit events), or a running server's
admin API (``--server``), and a rich progress bar on a terminal."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from typing import Any

from receiver.commands.common import CliError, open_store_for_cli


def load_cli_config(args: argparse.Namespace) -> Any:
    from receiver.config import ConfigError, load_config

    try:
        return load_config(getattr(args, "config", None), store=getattr(args, "store", None))
    except ConfigError as exc:
        raise CliError(str(exc)) from exc


@contextlib.contextmanager
def local_service(args: argparse.Namespace) -> Iterator[Any]:
    """A RetentionService on the store named by --store/--config, closed afterwards."""
    from receiver.config import ConfigError
    from receiver.ingest import IngestConsumer
    from receiver.integrity.chain import Chainer
    from receiver.integrity.setup import resolve
    from receiver.retention.scheduler import build_retention
    from receiver.telemetry import ReceiverMetrics
    from receiver.writer import GroupCommitWriter

    config = load_cli_config(args)
    store = open_store_for_cli(args)
    try:
        settings = resolve(config.integrity, store, create_key=False)
    except ConfigError as exc:
        store.close()
        raise CliError(str(exc)) from exc
    # a server store may be written by `serve` at the same time: chain under an id of our own
    instance = settings.instance_id if getattr(store, "path", None) else f"{settings.instance_id}-retention"
    metrics = ReceiverMetrics()
    writer = GroupCommitWriter(store, metrics, chainer=Chainer(store, instance))
    consumer = IngestConsumer(config, writer, metrics)
    try:
        yield build_retention(
            store, config, lambda request, identity: consumer.ingest(request, identity, "internal")
        )
    finally:
        writer.close()
        store.close()


def server_call(args: argparse.Namespace, method: str, path: str, **kwargs: Any) -> Any:
    from receiver.client import AdminClient, AdminClientError

    client = AdminClient(args.server, args.token, timeout=3600.0)
    try:
        return client.call(method, path, **kwargs)
    except AdminClientError as exc:
        raise CliError(str(exc)) from exc
    finally:
        client.close()


def retention_errors() -> tuple[type[Exception], ...]:
    from receiver.retention.archive import ArchiveError
    from receiver.retention.service import RetentionError
    from receiver.store.base import StoreUnavailable

    return (RetentionError, ArchiveError, StoreUnavailable, OSError)


class RichProgress:
    """The service's Progress protocol as a rich bar, shown only on a terminal."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = Console(stderr=True)
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            disable=not self.console.is_terminal,
        )
        self._task: Any = None

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def start(self, label: str, total: int) -> None:
        self._task = self._progress.add_task(label, total=total)

    def advance(self, n: int = 1) -> None:
        if self._task is not None:
            self._progress.advance(self._task, n)
