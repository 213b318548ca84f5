// Emit audit log records with the OpenTelemetry JS SDK through one of its OTLP log exporters.
// usage: node send.mjs grpc|http-json|http-proto ENDPOINT COUNT [TOKEN]
// Prints one JSON line: {"ids": [...], "result": <export result code of the last flush>}.
import { randomUUID } from 'node:crypto';
import { LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { OTLPLogExporter as GrpcExporter } from '@opentelemetry/exporter-logs-otlp-grpc';
import { OTLPLogExporter as JsonExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPLogExporter as ProtoExporter } from '@opentelemetry/exporter-logs-otlp-proto';

const [protocol, endpoint, countText, token] = process.argv.slice(2);
const headers = token ? { authorization: `Bearer ${token}` } : {};
let exporter;
if (protocol === 'grpc') {
  const { Metadata } = await import('@grpc/grpc-js');
  const metadata = new Metadata();
  if (token) metadata.set('authorization', `Bearer ${token}`);
  exporter = new GrpcExporter({ url: endpoint, metadata, compression: 'gzip' });
} else if (protocol === 'http-json') {
  exporter = new JsonExporter({ url: `${endpoint}/v1/logs`, headers });
} else {
  exporter = new ProtoExporter({ url: `${endpoint}/v1/logs`, headers, compression: 'gzip' });
}
const provider = new LoggerProvider({
  resource: resourceFromAttributes({ 'service.name': `node-${protocol}` }),
  processors: [new SimpleLogRecordProcessor({ exporter })],
});
const logger = provider.getLogger('interop', '1.0.0');
const ids = [];
for (let i = 0; i < Number(countText); i++) {
  const id = randomUUID();
  ids.push(id);
  logger.emit({
    eventName: 'audit.document.update',
    severityNumber: 9,
    body: `node edit ${i}`,
    context: undefined,
    attributes: {
      'audit.event.id': id,
      'audit.tenant.id': 'acme',
      'enduser.id': 'node-user',
      'audit.action': 'update',
      'audit.resource.type': 'document',
      'audit.resource.id': `doc-${i}`,
      'audit.changes': JSON.stringify({ title: { old: 'a', new: `b${i}` } }),
      'http.response.status_code': 200,
      retries: i,
    },
  });
}
await provider.forceFlush();
await provider.shutdown();
console.log(JSON.stringify({ ids }));
