import type { Socket } from 'node:net';

const NOTHING = new Uint8Array(0);

/**
 * Whether everything written to `socket` so far has been handed to the operating system: a write
 * of nothing completes only after what was queued before it, or fails when the connection is gone.
 * A receiver that does not read leaves the earlier writes in the socket's buffer, and this waits.
 * Without a socket (no connection to watch) it is true.
 */
export async function socketFlushed(socket: Socket | null | undefined): Promise<boolean> {
  if (!socket) return true;
  // The transport writes the message it has just taken on this turn of the event loop.
  await new Promise((resolve) => setImmediate(resolve));
  if (socket.destroyed || !socket.writable) return false;
  return new Promise((resolve) => socket.write(NOTHING, (error) => resolve(!error)));
}
