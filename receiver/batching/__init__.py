"""One batching path for OTLP protobuf requests: queued raw bodies decoded and validated together."""
