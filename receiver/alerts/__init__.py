"""Automated log review (SPEC section 10): rules evaluated on the store, alerts recorded as audit events and delivered to destinations."""
