// A webhook receiver that checks every Standard Webhooks signature with node:crypto alone.
// WEBHOOK_SECRET=whsec_… PORT=4500 node examples/webhook-receiver/receiver.mjs
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';

const secret = Buffer.from(process.env.WEBHOOK_SECRET.replace(/^whsec_/, ''), 'base64');
const seen = new Set();

function verified(headers, body) {
  const id = headers['webhook-id'];
  const timestamp = headers['webhook-timestamp'];
  if (!id || !timestamp || Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) return false;
  const expected = createHmac('sha256', secret).update(`${id}.${timestamp}.${body}`).digest();
  return String(headers['webhook-signature'] ?? '')
    .split(' ')
    .some((signature) => {
      const given = Buffer.from(signature.replace(/^v1,/, ''), 'base64');
      return given.length === expected.length && timingSafeEqual(given, expected);
    });
}

createServer((request, response) => {
  let body = '';
  request.setEncoding('utf8').on('data', (chunk) => (body += chunk));
  request.on('end', () => {
    if (!verified(request.headers, body)) return response.writeHead(401).end();
    // webhook-id is the same over every retry: a repeat is acknowledged and not acted on twice.
    if (!seen.has(request.headers['webhook-id'])) {
      seen.add(request.headers['webhook-id']);
      const { type, data } = JSON.parse(body);
      console.log(type, data.task.id, data.task.state, data.results.map((result) => result.name).join(' '));
    }
    response.writeHead(204).end();
  });
}).listen(Number(process.env.PORT ?? 4500), '127.0.0.1', function () {
  console.log(`listening on http://127.0.0.1:${this.address().port}/`);
});
