"""The ingest pipeline, one module a stage, each a plain function over a batch:

decode (OTLP request → flat records) → auth (token → tenant) → filter (audit or not) →
schemas (event names with a schema: reject or flag) → validate (record → its columns or a reason) → enrich (receiver-side columns) → Arrow table.
:func:`run` strings them together; the transports and the writer know nothing of the stages.
"""

from __future__ import annotations

from receiver.pipeline.run import PipelineResult, run

__all__ = ["PipelineResult", "run"]
