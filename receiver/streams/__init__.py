"""Log streams (SPEC section 11): every stored event of a stream's tenants delivered at least once, in stored order per log, to a SIEM, a Collector or object storage."""
