"""The receiver-side journal (``ingest.ack: journal``): requests are acknowledged once their
validated rows are fsync'd here, and the writer commits them to the store in big batches
behind it. See :mod:`receiver.journal.journal` for the design, :mod:`.framing` for the bytes."""

from __future__ import annotations

from receiver.journal.journal import Entry, Journal, JournalError, JournalFull

__all__ = ["Entry", "Journal", "JournalError", "JournalFull"]
