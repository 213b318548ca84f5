"""otel_audit.django in a real Django project on SQLite (tests/emitter/djangoproject): model
signals, queryset update/delete/bulk_create/bulk_update, many-to-many, admin actions, the
request context middleware, rollback; and one run read back from a real receiver."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from emitter_support import Captured, captured_fixture  # noqa: F401

import otel_audit


@pytest.fixture(scope="module")
def django_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    os.environ["OTEL_AUDIT_DJANGO_DB"] = str(tmp_path_factory.mktemp("django") / "db.sqlite3")
    os.environ["DJANGO_SETTINGS_MODULE"] = "djangoproject.settings"
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", run_syncdb=True, verbosity=0)
    yield


@pytest.fixture
def shop(django_project: None, captured: Captured) -> Iterator[Any]:
    from djangoproject.shop import models

    yield models
    for model in (models.Product, models.Tag, models.Untracked):
        model.objects.all()._raw_delete(model.objects.db)  # no signals: cleaning up is not audited


def events(captured: Captured) -> list[dict[str, Any]]:
    out = []
    for a in captured.attrs():
        a = dict(a)
        a["changes"] = json.loads(a.pop("audit.changes", "{}"))
        out.append(a)
    return out


def key(e: dict[str, Any]) -> tuple[str, str, str]:
    return (e["audit.action"], e["audit.resource.type"], e["audit.resource.id"])


def test_save_update_delete_with_diffs_redaction_and_rollback(shop, captured):
    from django.db import transaction

    with otel_audit.audit_context(user_id="alice", tenant_id="acme"):
        p = shop.Product.objects.create(name="Lamp", price=30, secret="s3cr3t", updated_at=1)
        p = shop.Product.objects.get(pk=p.pk)
        p.name = "Desk lamp"
        p.secret = "other"
        p.updated_at = 2  # excluded field: not in the diff
        p.save()
        p.save()  # nothing changed: no event
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                shop.Product.objects.create(name="rolled back")
                raise RuntimeError("undo")
        shop.Untracked.objects.create(value=1)
        p.delete()
    got = events(captured)
    pid = str(p.pk) if p.pk else got[0]["audit.resource.id"]
    assert [key(e) for e in got] == [
        ("create", "product", pid),
        ("update", "product", pid),
        ("delete", "product", pid),
    ]
    assert got[0]["changes"]["name"] == {"old": None, "new": "Lamp"}
    assert got[0]["changes"]["secret"] == {"old": "[REDACTED]", "new": "[REDACTED]"}
    assert "updated_at" not in got[0]["changes"]
    assert got[1]["changes"] == {
        "name": {"old": "Lamp", "new": "Desk lamp"},
        "secret": {"old": "[REDACTED]", "new": "[REDACTED]"},
    }
    assert got[2]["changes"]["name"] == {"old": "Desk lamp", "new": None}
    assert all(e["enduser.id"] == "alice" and e["audit.tenant.id"] == "acme" for e in got)
    assert "s3cr3t" not in json.dumps(got)


def test_save_with_update_fields_reports_only_what_was_saved(shop, captured):
    p = shop.Product.objects.create(name="Cup", price=4)
    captured.clear()
    p = shop.Product.objects.get(pk=p.pk)
    p.name = "Mug"
    p.price = 5
    p.save(update_fields=["price"])
    p.save(update_fields=["name"])
    assert [e["changes"] for e in events(captured)] == [
        {"price": {"old": 4, "new": 5}},
        {"name": {"old": "Cup", "new": "Mug"}},
    ]


def test_queryset_bulk_operations_are_counted_exactly(shop, captured):
    from django.db.models import F

    made = shop.Product.objects.bulk_create([shop.Product(name=f"p{i}", price=i) for i in range(10)])
    assert len(events(captured)) == 10 and all(e["audit.bulk"] is True for e in events(captured))
    captured.clear()
    assert shop.Product.objects.filter(price__gte=6).update(price=F("price") + 1) == 4
    updated = events(captured)
    assert sorted(e["audit.resource.id"] for e in updated) == sorted(str(p.pk) for p in made if p.price >= 6)
    assert {e["audit.action"] for e in updated} == {"update"}
    captured.clear()
    items = list(shop.Product.objects.filter(price__lt=2))
    for item in items:
        item.name = item.name.upper()
    shop.Product.objects.bulk_update(items, ["name"])
    assert sorted(e["changes"]["name"]["new"] for e in events(captured)) == ["P0", "P1"]
    captured.clear()
    deleted, _ = shop.Product.objects.filter(price__lt=5).delete()
    assert deleted == 5
    gone = events(captured)
    assert len(gone) == 5 and {e["audit.action"] for e in gone} == {"delete"}
    captured.clear()
    shop.Untracked.objects.bulk_create([shop.Untracked(value=1)])
    shop.Untracked.objects.update(value=2)
    shop.Untracked.objects.all().delete()
    assert events(captured) == []


def test_many_to_many_changes(shop, captured):
    a, b, c = (shop.Tag.objects.create(name=n) for n in "abc")
    p = shop.Product.objects.create(name="x")
    captured.clear()
    p.tags.add(a, b)
    p.tags.remove(a)
    p.tags.add(c)
    p.tags.clear()
    got = [e["changes"]["tags"] for e in events(captured)]
    ids = sorted([str(a.pk), str(b.pk)])
    assert got == [
        {"old": [], "new": ids},
        {"old": ids, "new": [str(b.pk)]},
        {"old": [str(b.pk)], "new": sorted([str(b.pk), str(c.pk)])},
        {"old": sorted([str(b.pk), str(c.pk)]), "new": []},
    ]


def test_request_context_sensitive_route_and_queryset_update_in_a_view(shop, captured):
    from django.test import Client

    p = shop.Product.objects.create(name="Chair", price=12)
    captured.clear()
    client = Client(REMOTE_ADDR="127.0.0.1")
    headers = {"HTTP_X_TENANT": "acme", "HTTP_X_FORWARDED_FOR": "198.51.100.23", "HTTP_USER_AGENT": "ua/2"}
    assert client.get(f"/products/{p.pk}", **headers).status_code == 200
    assert client.get(f"/products/{p.pk}/rename", {"name": "Stool"}, **headers).status_code == 200
    assert client.get("/discount", **headers).json() == {"updated": 1}
    read, renamed, discounted = events(captured)
    assert key(read) == ("read", "product", str(p.pk)) and read["http.route"] == "/products/{pk}"
    assert read["http.response.status_code"] == 200
    assert key(renamed) == ("update", "product", str(p.pk))
    assert renamed["changes"] == {"name": {"old": "Chair", "new": "Stool"}}
    assert renamed["http.route"] == "/products/{pk}/rename"
    assert key(discounted) == ("update", "product", str(p.pk)) and discounted["audit.bulk"] is True
    for e in (read, renamed, discounted):
        assert e["audit.tenant.id"] == "acme" and e["client.address"] == "198.51.100.23"
        assert e["user_agent.original"] == "ua/2" and "enduser.id" in e


def test_admin_changes_and_actions_carry_the_admin_user(shop, captured):
    from django.contrib.auth.models import User
    from django.test import Client

    admin = User.objects.create_superuser("root", "root@example.com", "pw-123456")
    items = [shop.Product.objects.create(name=f"a{i}", price=5) for i in range(3)]
    client = Client()
    client.force_login(admin)
    captured.clear()
    response = client.post(
        "/admin/shop/product/",
        {"action": "make_free", "_selected_action": [str(items[0].pk), str(items[1].pk)]},
    )
    assert response.status_code == 302
    response = client.post(
        "/admin/shop/product/",
        {"action": "delete_selected", "_selected_action": [str(items[2].pk)]},
    )
    assert response.status_code == 200  # the confirmation page: nothing ran, nothing recorded
    response = client.post(
        "/admin/shop/product/",
        {"action": "delete_selected", "_selected_action": [str(items[2].pk)], "post": "yes"},
    )
    assert response.status_code == 302
    got = [e for e in events(captured) if e["audit.resource.type"] == "product"]
    assert sorted(key(e) for e in got) == sorted(
        [
            ("update", "product", str(items[0].pk)),
            ("update", "product", str(items[1].pk)),
            ("execute", "product", f"{items[0].pk},{items[1].pk}"),
            ("delete", "product", str(items[2].pk)),
            ("execute", "product", str(items[2].pk)),
        ]
    )
    actions = {e["audit.admin.action"]: e for e in got if e["audit.action"] == "execute"}
    assert set(actions) == {"make_free", "delete_selected"} and actions["make_free"]["audit.row_count"] == 2
    assert all(e["enduser.id"] == str(admin.pk) for e in got)


def test_django_behind_the_wsgi_middleware_on_a_real_server(shop, captured):
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    import httpx
    from django.core.wsgi import get_wsgi_application

    from otel_audit.wsgi import AuditMiddleware, header_resolver

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    app = AuditMiddleware(
        get_wsgi_application(),
        user_resolver=header_resolver("X-User"),
        sensitive=["GET /products/{id}/rename=product:rename"],
    )
    p = shop.Product.objects.create(name="Bench", price=3)
    captured.clear()
    server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        response = httpx.get(
            f"http://127.0.0.1:{server.server_port}/products/{p.pk}/rename",
            params={"name": "Seat"},
            headers={"X-User": "gateway-user", "X-Tenant": "acme"},
            timeout=30,
        )
        assert response.status_code == 200
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
    # both are emitted on the deferred worker, in call order; read in timestamp order (the
    # commit's, the request's end), which is what an auditor sorts by
    stamps = [r.timestamp for r in captured.records()]
    update, route = [
        e for _, e in sorted(zip(stamps, events(captured), strict=True), key=lambda pair: pair[0])
    ]
    assert key(update) == ("update", "product", str(p.pk))
    assert update["changes"] == {"name": {"old": "Bench", "new": "Seat"}}
    # the WSGI middleware's user (the Django request is anonymous), the Django middleware's tenant
    assert update["enduser.id"] == "gateway-user" and update["audit.tenant.id"] == "acme"
    assert update["client.address"] == "127.0.0.1" and update["http.route"] == "/products/{pk}/rename"
    assert (route["audit.action"], route["audit.resource.id"], route["enduser.id"]) == (
        "rename",
        str(p.pk),
        "gateway-user",
    )


def test_events_reach_a_real_receiver(django_project, store, receiver):
    from django.test import Client
    from djangoproject.shop.models import Product

    from receiver.filters import EventFilter

    otel_audit.configure(endpoint=f"http://127.0.0.1:{receiver.grpc_port}", service_name="django-svc")
    try:
        with otel_audit.audit_context(tenant_id="acme", user_id="cli"):
            p = Product.objects.create(name="Sofa", price=100, secret="k")
        Client().get(f"/products/{p.pk}/rename", {"name": "Couch"}, HTTP_X_TENANT="acme")
        with otel_audit.audit_context(tenant_id="acme", user_id="cli"):
            Product.objects.filter(pk=p.pk).delete()
        assert otel_audit.force_flush()
    finally:
        otel_audit.shutdown()
    rows = sorted(store.search(EventFilter(), 100), key=lambda r: r["created_at"])
    assert [(r["action"], r["resource_type"], r["resource_id"]) for r in rows] == [
        ("create", "product", str(p.pk)),
        ("update", "product", str(p.pk)),
        ("delete", "product", str(p.pk)),
    ]
    assert rows[0]["changes"]["secret"] == {"old": "[REDACTED]", "new": "[REDACTED]"}
    assert rows[1]["changes"] == {"name": {"old": "Sofa", "new": "Couch"}}
    assert rows[1]["http_route"] == "/products/{pk}/rename" and rows[1]["service_name"] == "django-svc"


def test_raw_sql_is_not_audited_and_the_documented_workaround_is(shop, captured):
    from django.db import connection, transaction

    from otel_audit.events import updated

    p = shop.Product.objects.create(name="Chair", price=10)
    captured.clear()
    table = shop.Product._meta.db_table
    with transaction.atomic():  # raw SQL: no event (README "What is not audited automatically")
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {table} SET price = %s WHERE id = %s", [11, p.pk])
    assert events(captured) == []

    def change_price(new: int) -> None:  # the workaround: record it yourself, on commit
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {table} SET price = %s WHERE id = %s", [new, p.pk])
        transaction.on_commit(lambda: updated("product", p.pk, before={"price": 11}, after={"price": new}))

    with transaction.atomic():
        change_price(12)
    with pytest.raises(RuntimeError), transaction.atomic():
        change_price(13)
        raise RuntimeError("rolled back: on_commit never runs")
    (got,) = events(captured)
    assert key(got) == ("update", "product", str(p.pk))
    assert got["changes"] == {"price": {"old": 11, "new": 12}}
