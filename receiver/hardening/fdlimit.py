"""The process's file-descriptor budget: raise the soft limit to the hard one, and size the
listeners' connection caps so that, all full, they leave a reserve for the store."""

from __future__ import annotations

import logging
import resource

log = logging.getLogger("otel_audit.receiver")


def raise_fd_limit() -> int:
    """Soft RLIMIT_NOFILE → the hard limit (where allowed); returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, target, exc)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def connection_cap(configured: int, listeners: int, reserve: int, soft_limit: int) -> int:
    """``configured``, lowered so that ``listeners`` full listeners leave ``reserve`` fds free."""
    budget = max(listeners, (soft_limit - reserve) // max(1, listeners))
    if budget < configured:
        log.warning(
            "limits.max_connections lowered from %d to %d per listener (open-file limit %d, reserve %d)",
            configured,
            budget,
            soft_limit,
            reserve,
        )
        return budget
    return configured
