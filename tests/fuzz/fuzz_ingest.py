"""Coverage-guided fuzzing of the ingest path with atheris (``pip install atheris``):

    python tests/fuzz/fuzz_ingest.py -max_total_time=300          # protobuf payloads
    python tests/fuzz/fuzz_ingest.py -max_total_time=300 --json   # OTLP JSON payloads

Any exception other than a refused (undecodable) payload is a finding; atheris stops and saves the
input as ``crash-*``. tests/receiver/test_ingest_fuzz.py runs a short bounded round of it.
"""

from __future__ import annotations

import sys

import atheris

# coverage feedback from our own code only: instrumenting protobuf and pyarrow costs ~20 s of start-up
with atheris.instrument_imports(include=["receiver", "otel_audit"]):
    from receiver.transport.fuzz_target import ingest_bytes

AS_JSON = "--json" in sys.argv


def one_input(data: bytes) -> None:
    ingest_bytes(data, as_json=AS_JSON, tenant="acme" if data[:1] == b"\x00" else None)


if __name__ == "__main__":
    atheris.Setup([a for a in sys.argv if a != "--json"], one_input)
    atheris.Fuzz()
