// A tiny webhook receiver for the compose stack: logs every notification Alertmanager (POST /alertmanager) and
// Grafana (POST /grafana) send, one line per alert, so `docker compose logs -f alert-log` shows what on-call would
// get. Dependency-free (node:http), read-only, no state.
import { createServer } from 'node:http';

const port = Number(process.env.PORT ?? 8080);
const MAX_BODY_BYTES = 1024 * 1024;

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/healthz') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    return;
  }
  if (req.method !== 'POST') {
    res.writeHead(405).end();
    return;
  }
  const chunks = [];
  let size = 0;
  req.on('data', (c) => {
    size += c.length;
    if (size > MAX_BODY_BYTES) {
      res.writeHead(413).end();
      req.destroy();
      return;
    }
    chunks.push(c);
  });
  req.on('end', () => {
    if (res.writableEnded) return;
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      res.writeHead(400).end('expected JSON\n');
      return;
    }
    const alerts = Array.isArray(body?.alerts) ? body.alerts : [];
    for (const a of alerts) {
      const labels = a.labels ?? {};
      const summary = a.annotations?.summary ?? '';
      const who = labels.user ? ` user=${labels.user} plan=${labels.plan ?? ''}` : '';
      process.stdout.write(`${new Date().toISOString()} ${req.url} ${a.status ?? body.status} ${labels.alertname ?? '?'} severity=${labels.severity ?? ''}${who} — ${summary}\n`);
    }
    // The example Slack secret points here too: Slack's payload has attachments instead of alerts.
    for (const at of Array.isArray(body?.attachments) ? body.attachments : []) {
      process.stdout.write(`${new Date().toISOString()} ${req.url} ${at.title ?? ''} — ${String(at.text ?? '').replace(/\s+/g, ' ').trim()}\n`);
    }
    res.writeHead(200).end();
  });
});
server.listen(port, '0.0.0.0', () => process.stdout.write(`alert-log listening on :${port}\n`));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));
