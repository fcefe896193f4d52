import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ClientFaultLog } from './client-faults.js';

/**
 * How long a refused body is still read and thrown away before the connection is cut: a client
 * still sending when the socket closes gets a reset and may never see the 413 (nginx's lingering
 * close exists for the same reason).
 */
const LINGER_MS = 2000;

function refuseTooLarge(request: IncomingMessage, response: ServerResponse, limit: number): void {
  const body = JSON.stringify({
    errors: [
      {
        message: `The request body is over the limit of ${limit} bytes`,
        extensions: { code: 'PAYLOAD_TOO_LARGE', limit },
      },
    ],
  });
  response.writeHead(413, { 'content-type': 'application/json; charset=utf-8', connection: 'close' }).end(body);
  request.on('data', () => {});
  request.resume();
  setTimeout(() => request.socket?.destroy(), LINGER_MS).unref();
}

/**
 * Reads the request's body, up to `limit` bytes, before yoga does: a body announced or found to
 * be larger gets a 413 with a GraphQL error as soon as that is known, without reading the rest.
 * Resolves false when the request has been answered.
 */
export async function readBodyWithin(
  request: IncomingMessage,
  response: ServerResponse,
  limit: number,
  faults: ClientFaultLog,
): Promise<boolean> {
  if (request.method === 'GET' || request.method === 'HEAD') return true;
  const announced = Number(request.headers['content-length']);
  const client = { remoteAddress: request.socket.remoteAddress };
  if (announced > limit) {
    faults.report('oversized-body', { ...client, announced }, `request body of ${announced} bytes refused with 413`);
    refuseTooLarge(request, response, limit);
    return false;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of request as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) {
        faults.report('oversized-body', client, `request body over ${limit} bytes refused with 413`);
        refuseTooLarge(request, response, limit);
        return false;
      }
      chunks.push(chunk);
    }
  } catch (error) {
    // The client went away mid-body, or the server's request timeout cut it: nobody is left to answer.
    faults.report('aborted-body', { ...client, code: (error as { code?: string }).code }, 'request body aborted');
    request.socket?.destroy();
    return false;
  }
  const body = Buffer.concat(chunks);
  // yoga's Node adapter takes `request.body`, when a framework has read the body before it, as
  // the body: any async iterable with an own enumerable property will do.
  (request as IncomingMessage & { body?: unknown }).body = {
    bytes: body.length,
    async *[Symbol.asyncIterator]() {
      if (body.length > 0) yield body;
    },
  };
  return true;
}
