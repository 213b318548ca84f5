"""The tenant-facing audit log (SPEC section 9): signed viewer tokens, their scope, the embeddable page."""
