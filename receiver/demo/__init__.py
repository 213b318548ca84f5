"""The `otel-audit demo` pieces: the sample instrumented app, its traffic and the runner."""
