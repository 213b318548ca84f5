"""Retention (SPEC section 4, README "Retention"): policies → TTL, the archive job, archive
expiry, legal holds, restore and status; ``serve`` runs the job on a schedule."""
