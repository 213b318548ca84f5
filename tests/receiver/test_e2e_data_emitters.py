"""A Flask app with a tracked SQLAlchemy session behind otel_audit.wsgi.AuditMiddleware, served by a
real WSGI server, exporting through the real SDK to a real receiver: the rows read back carry the
request's actor, tenant and client address, the column diffs, and nothing from rolled-back work."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx
import pytest
from flask import Flask, request
from sqlalchemy import create_engine, update
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker
from sqlalchemy.pool import StaticPool

import otel_audit
from otel_audit.sqlalchemy import track
from otel_audit.wsgi import AuditMiddleware, header_resolver
from receiver.filters import EventFilter


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    owner: Mapped[str]
    balance: Mapped[int]
    api_token: Mapped[str] = mapped_column(default="")


def build_app() -> Flask:
    engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    Base.metadata.create_all(engine)
    Session = sessionmaker(engine)
    track(Session, exclude_columns=["api_token"])
    app = Flask(__name__)

    @app.post("/accounts/<int:account_id>")
    def open_account(account_id: int) -> dict[str, Any]:
        with Session.begin() as s:
            s.add(Account(id=account_id, owner=request.args["owner"], balance=0, api_token="tok"))
        return {"id": account_id}

    @app.put("/accounts/<int:account_id>")
    def deposit(account_id: int) -> dict[str, Any]:
        with Session.begin() as s:
            account = s.get(Account, account_id)
            account.balance += int(request.args["amount"])
            if account.balance > 1000:
                raise ValueError("over the limit")  # rolled back: no event
        return {"id": account_id}

    @app.post("/interest")
    def interest() -> dict[str, Any]:
        with Session.begin() as s:
            s.execute(update(Account).values(balance=Account.balance + 1))
        return {}

    app.wsgi_app = AuditMiddleware(  # type: ignore[method-assign]
        app.wsgi_app,
        user_resolver=header_resolver("X-User"),
        tenant_resolver=lambda environ: "acme",
        trusted_proxies=["127.0.0.1/32"],
    )
    return app


@pytest.fixture
def served() -> Iterator[str]:
    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = make_server("127.0.0.1", 0, build_app(), handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_flask_sqlalchemy_changes_arrive_with_request_context(receiver, store, served):
    otel_audit.configure(endpoint=f"http://127.0.0.1:{receiver.grpc_port}", service_name="bank")
    try:
        headers = {"X-User": "teller-1", "X-Forwarded-For": "203.0.113.77", "User-Agent": "bank-ui/3"}
        with httpx.Client(base_url=served, headers=headers, timeout=30) as http:
            assert http.post("/accounts/1", params={"owner": "ann"}).status_code == 200
            assert http.post("/accounts/2", params={"owner": "bob"}).status_code == 200
            assert http.put("/accounts/1", params={"amount": 50}).status_code == 200
            assert http.put("/accounts/2", params={"amount": 5000}).status_code == 500
            assert http.post("/interest").status_code == 200
        assert otel_audit.force_flush()
    finally:
        otel_audit.shutdown()
    rows = sorted(store.search(EventFilter(), 100), key=lambda r: r["created_at"])
    got = [(r["action"], r["resource_type"], r["resource_id"]) for r in rows]
    assert got == [
        ("create", "accounts", "1"),
        ("create", "accounts", "2"),
        ("update", "accounts", "1"),
        ("update", "accounts", ""),
    ]
    assert rows[0]["changes"] == {
        "id": {"old": None, "new": 1},
        "owner": {"old": None, "new": "ann"},
        "balance": {"old": None, "new": 0},
    }
    assert rows[2]["changes"] == {"balance": {"old": 0, "new": 50}}
    bulk = rows[3]
    assert bulk["attributes"]["audit.row_count"] == "2" and bulk["attributes"]["audit.bulk"] == "true"
    assert bulk["changes"] == {"balance": {"old": None, "new": "accounts.balance + :balance_1"}}
    for row in rows:
        assert (row["tenant_id"], row["user_id"], row["ip_address"]) == ("acme", "teller-1", "203.0.113.77")
        assert row["user_agent"] == "bank-ui/3" and row["service_name"] == "bank"
        assert row["http_method"] in ("POST", "PUT")
    assert rows[2]["http_route"] == "/accounts/{account_id}"
