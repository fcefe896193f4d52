import { isIPv4, isIPv6, type AddressInfo } from 'node:net';
import { GraphQLError } from 'graphql';

const MAX_HOSTNAME_LENGTH = 253;
const HOSTNAME_LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;
const DOTTED_NUMBERS = /^[\d.]+$/;
const IPV6_CHARACTERS = /^[\dA-Fa-f:.]+$/;
const PORT = /^[1-9]\d{0,4}$/;
const MAX_PORT = 65_535;

function isHostname(hostname: string): boolean {
  // A URL parser reads an all-numeric host as IPv4: 999.1.1.1 is not a name but a broken address.
  if (DOTTED_NUMBERS.test(hostname)) return isIPv4(hostname);
  if (hostname.length > MAX_HOSTNAME_LENGTH) return false;
  return hostname.split('.').every((label) => HOSTNAME_LABEL.test(label));
}

function isPort(port: string): boolean {
  return PORT.test(port) && Number(port) <= MAX_PORT;
}

/**
 * `http://` and the Host header when it is a plain host[:port] (a name, IPv4, or [IPv6], port
 * 1-65535), else null. Execution URLs start with the origin, so a Host carrying userinfo, a path,
 * a query or a fragment would let whoever sends it choose where the URL points.
 */
export function originFromHost(host: string): string | null {
  let port: string | null = null;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    const address = host.slice(1, end);
    // isIPv6 accepts a zone (fe80::1%eth0), which URLs cannot carry.
    if (end < 0 || !IPV6_CHARACTERS.test(address) || !isIPv6(address)) return null;
    const rest = host.slice(end + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return null;
      port = rest.slice(1);
    }
  } else {
    const colon = host.lastIndexOf(':');
    if (!isHostname(colon < 0 ? host : host.slice(0, colon))) return null;
    if (colon >= 0) port = host.slice(colon + 1);
  }
  if (port !== null && !isPort(port)) return null;
  return `http://${host}`;
}

/** The origin of the address the server listens on, for requests that name no usable Host. */
export function listeningOrigin(address: AddressInfo): string {
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}

/** For an HTTP request whose Host header is not a host[:port]: its answer is a 400. */
export function malformedHostError(): GraphQLError {
  return new GraphQLError('The Host header must be a host[:port], e.g. example.com:4000', {
    extensions: { code: 'BAD_REQUEST', http: { status: 400 } },
  });
}
