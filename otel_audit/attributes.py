"""Every attribute name of an audit event on the wire, once (SPEC section 1).

Both sides import these names: the emitter writes them, the receiver reads them.
"""

from __future__ import annotations

EVENT_NAME_PREFIX = "audit."
#: Older SDKs cannot set a log record's ``event_name`` field; they send this attribute.
EVENT_NAME_ATTR = "event.name"

EVENT_ID = "audit.event.id"
TENANT_ID = "audit.tenant.id"
USER_ID = "enduser.id"
USER_ID_ALIAS = "user.id"
ACTOR_TYPE = "audit.actor.type"
ACTION = "audit.action"
OUTCOME = "audit.outcome"
RESOURCE_TYPE = "audit.resource.type"
RESOURCE_ID = "audit.resource.id"
CHANGES = "audit.changes"
CLIENT_ADDRESS = "client.address"
USER_AGENT = "user_agent.original"
SESSION_ID = "session.id"
HTTP_METHOD = "http.request.method"
HTTP_ROUTE = "http.route"
HTTP_STATUS = "http.response.status_code"
SERVICE_NAME = "service.name"

# Optional attributes set by the emitter's helpers (kept in the receiver's ``attributes`` map).
#: Names of the fields a sensitive read disclosed (a list of strings).
FIELDS = "audit.fields"
#: The permission a ``grant``/``revoke`` event changed, and who received or lost it.
PERMISSION = "audit.permission"
GRANTEE = "audit.grantee"
#: The emitting process's random source id and its per-source event number (1, 2, 3, …), for
#: source-side gap detection (``otel_audit.source``).
SOURCE_ID = "audit.source.id"
SOURCE_SEQ = "audit.source.seq"

ACTOR_TYPES = ("user", "service", "system", "api_key")
ACTIONS = ("create", "read", "update", "delete", "login", "logout", "grant", "revoke", "export", "execute")
OUTCOMES = ("success", "failure", "denied")

DEFAULT_ACTOR_TYPE = "user"
DEFAULT_OUTCOME = "success"
REDACTED = "[REDACTED]"


def event_name_for(resource_type: str, action: str) -> str:
    """``audit.<resource_type>.<action>``, the event name every emitted record carries."""
    return f"{EVENT_NAME_PREFIX}{resource_type}.{action}"
