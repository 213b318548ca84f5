"""The read-only ClickHouse-HTTP endpoint (``sql_endpoint:`` in the config): lets stock
Grafana's ClickHouse plugin, clickhouse-connect or ``curl`` query the embedded store.

``start_sql_endpoint`` opens one locked session per configured user and serves them on the
endpoint's own listener, with its own credentials (never the admin or ingest tokens)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from receiver.config import ConfigError, split_host_port
from receiver.config import SqlEndpoint as SqlEndpointConfig
from receiver.store.restricted import Limits


@dataclass
class SqlEndpointServer:
    server: uvicorn.Server
    thread: threading.Thread
    sessions: list[Any]
    port: int
    users: list[Any] = field(default_factory=list)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        for user in self.users:
            user.close()  # its threads, then its sessions
        for session in self.sessions:
            session.close()


def start_sql_endpoint(
    store: Any,
    config: SqlEndpointConfig,
    access_trail: Any = None,
    uvicorn_options: dict[str, Any] | None = None,
) -> SqlEndpointServer:
    """``access_trail`` (the admin API's AccessTrail): every read of audit data through the
    endpoint is recorded as an audit event before it is answered (``chhttp/trail.py``)."""
    from receiver.chhttp.pool import SqlUserSession
    from receiver.chhttp.server import SqlEndpoint

    if not hasattr(store, "restricted_session"):
        raise ConfigError(
            "sql_endpoint serves the embedded (chdb://) store; with a ClickHouse server, point Grafana "
            "at the server with a read-only user (deploy/clickhouse/users.d/otel-audit.xml)"
        )
    limits = Limits(
        max_execution_time=config.max_execution_time,
        max_memory_usage=config.max_memory_usage,
        max_result_rows=config.max_result_rows,
        max_result_bytes=config.max_result_bytes,
    )
    users = []
    for user in config.users:
        tenants = None if "*" in user.tenants else tuple(user.tenants)
        sessions = tuple(store.restricted_session(limits, tenants) for _ in range(config.sessions_per_user))
        users.append(SqlUserSession(user.user, user.password, sessions, queued=config.queued_per_user))
    endpoint = SqlEndpoint(users, version=users[0].session.version, access_trail=access_trail)
    host, port = split_host_port(config.listen)
    server = uvicorn.Server(
        uvicorn.Config(
            endpoint.app(),
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            **(uvicorn_options or {}),  # the connection cap and header timeout (receiver/hardening)
        )
    )
    thread = threading.Thread(target=server.run, name="otel-audit-sql", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            for user in users:
                user.close()
            raise OSError(f"cannot listen for the SQL endpoint on {config.listen}")
        threading.Event().wait(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    return SqlEndpointServer(server, thread, [s for u in users for s in u.sessions], bound, users)
