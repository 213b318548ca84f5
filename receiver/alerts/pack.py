"""The shipped rule pack: automated review of the PCI DSS v4 10.2.1.x events (PCI DSS 10.4.1.1
asks for automated mechanisms; SOC 2 CC7.2 for anomaly monitoring). docs/ALERTS.md gives each
rule's rationale; ``alerts.default_pack: false`` leaves it out, and a rule of the same name in
``alerts.rules`` replaces the pack's."""

from __future__ import annotations

from receiver.alerts.config import Alerts, Rule

PACK: tuple[Rule, ...] = (
    Rule(
        name="pci-10.2.1.4-brute-force",
        kind="threshold",
        match={"action": "login", "outcome": ["failure", "denied"]},
        group_by=("user_id",),
        threshold=5,
        window="5m",
        severity="high",
        rationale="PCI DSS 10.2.1.4 (invalid logical access attempts): five failed logins of one "
        "account within five minutes is password guessing (compare PCI DSS 8.3.4's lockout).",
    ),
    Rule(
        name="pci-10.2.1.4-password-spray",
        kind="threshold",
        match={"action": "login", "outcome": ["failure", "denied"]},
        group_by=("ip_address",),
        threshold=20,
        window="5m",
        severity="high",
        rationale="PCI DSS 10.2.1.4: twenty failed logins from one address within five minutes, "
        "across accounts, is password spraying that a per-account limit does not see.",
    ),
    Rule(
        name="pci-10.2.1.2-privilege-grant",
        kind="match",
        match={"action": "grant"},
        group_by=("user_id",),
        severity="high",
        rationale="PCI DSS 10.2.1.2 and 10.2.1.5 (administrative actions, changes to privileges): "
        "every grant of a permission or role is reviewed.",
    ),
    Rule(
        name="pci-10.2.1.1-bulk-sensitive-reads",
        kind="threshold",
        match={"action": "read", "event_name": "!audit.audit_log.*"},
        group_by=("user_id",),
        threshold=1000,
        window="10m",
        severity="medium",
        rationale="PCI DSS 10.2.1.1 (individual access to cardholder data): a thousand reads by one "
        "actor in ten minutes is bulk access or exfiltration, not ordinary work.",
    ),
    Rule(
        name="pci-10.2.1.3-audit-log-export",
        kind="match",
        match={"event_name": "audit.audit_log.export"},
        group_by=("user_id",),
        severity="medium",
        rationale="PCI DSS 10.2.1.3 (access to audit logs): every export of audit events is reviewed.",
    ),
    Rule(
        name="pci-10.2.1.3-audit-log-access-denied",
        kind="match",
        match={"event_name": "audit.audit_log.*", "outcome": "denied"},
        group_by=("user_id",),
        severity="high",
        rationale="PCI DSS 10.2.1.3: a token asking for another tenant's audit events is probing.",
    ),
    Rule(
        name="pci-10.2.1.6-retention-or-hold-change",
        kind="match",
        match={"resource_type": ["legal_hold", "audit_archive"]},
        group_by=("resource_type",),
        severity="medium",
        rationale="PCI DSS 10.2.1.6 and 10.5.1 (audit log retention): legal holds set or lifted and "
        "archived audit logs deleted change what evidence exists.",
    ),
    Rule(
        name="pci-10.2.1.7-system-object-deletion",
        kind="match",
        match={
            "action": "delete",
            "resource_type": ["role", "permission", "user", "api_key", "service_account"],
        },
        group_by=("resource_type",),
        severity="medium",
        rationale="PCI DSS 10.2.1.7 (creation and deletion of system-level objects): deleted "
        "accounts, roles, permissions and keys are reviewed.",
    ),
    Rule(
        name="audit-source-silent",
        kind="silence",
        group_by=("service_name",),
        window="24h",
        severity="medium",
        rationale="PCI DSS 10.2.1.6 and 10.7.2 (failures of critical security control systems, "
        "including audit logging): a service that sent audit events and has sent none for a day "
        "has probably stopped auditing; a silent source is how audit gaps start.",
    ),
)


def effective_rules(config: Alerts) -> tuple[Rule, ...]:
    """The configured rules, plus the pack's (routed to ``pack_destinations``) unless switched off
    or replaced by a configured rule of the same name."""
    own = {r.name for r in config.rules}
    pack: tuple[Rule, ...] = ()
    if config.default_pack:
        pack = tuple(
            r.model_copy(update={"destinations": config.pack_destinations}) for r in PACK if r.name not in own
        )
    return (*config.rules, *pack)
