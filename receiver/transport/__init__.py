"""OTLP transports: decode the wire format, hand the request to the consumer, map errors."""
