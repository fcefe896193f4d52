import { BlockList, isIP } from 'node:net';

// Which addresses a webhook may not reach unless the operator allows private networks: a URL is
// chosen by a client, and without this rule it would make the server probe its own network
// (`http://169.254.169.254/` hands out cloud credentials). Judged on the address a connection is
// about to use, never on the name (see send.ts).

/** What an address is, in the words of the refusal. */
export const BLOCKED_ADDRESS_CLASSES = Object.freeze([
  'loopback',
  'unspecified',
  'private',
  'link-local',
  'cloud metadata',
  'shared (carrier-grade NAT)',
  'IETF protocol',
  'benchmarking',
  'documentation',
  'multicast',
  'reserved',
] as const);
export type BlockedAddressClass = (typeof BLOCKED_ADDRESS_CLASSES)[number];

/** How to lift the rule, for the refusal to say. */
export const ALLOW_PRIVATE_HINT = 'set TASKPORT_WEBHOOK_ALLOW_PRIVATE=true to allow private networks';

type Range = readonly [network: string, prefix: number];

// Most specific first: the metadata addresses sit inside link-local and unique-local ranges.
const IPV4_RANGES: ReadonlyArray<readonly [BlockedAddressClass, readonly Range[]]> = [
  ['cloud metadata', [['169.254.169.254', 32]]],
  ['unspecified', [['0.0.0.0', 8]]],
  ['loopback', [['127.0.0.0', 8]]],
  ['private', [['10.0.0.0', 8], ['172.16.0.0', 12], ['192.168.0.0', 16]]],
  ['link-local', [['169.254.0.0', 16]]],
  ['shared (carrier-grade NAT)', [['100.64.0.0', 10]]],
  ['IETF protocol', [['192.0.0.0', 24]]],
  ['benchmarking', [['198.18.0.0', 15]]],
  ['documentation', [['192.0.2.0', 24], ['198.51.100.0', 24], ['203.0.113.0', 24]]],
  ['multicast', [['224.0.0.0', 4]]],
  ['reserved', [['240.0.0.0', 4]]],
];

const IPV6_RANGES: ReadonlyArray<readonly [BlockedAddressClass, readonly Range[]]> = [
  ['cloud metadata', [['fd00:ec2::254', 128]]],
  ['unspecified', [['::', 128]]],
  ['loopback', [['::1', 128]]],
  // fec0::/10: site-local, deprecated but still routed inside some networks.
  ['private', [['fc00::', 7], ['fec0::', 10]]],
  ['link-local', [['fe80::', 10]]],
  ['documentation', [['2001:db8::', 32]]],
  ['multicast', [['ff00::', 8]]],
  // ::/96 (IPv4-compatible, deprecated): no reachable host has one.
  ['reserved', [['::', 96]]],
];

function blockLists(family: 'ipv4' | 'ipv6', ranges: typeof IPV4_RANGES) {
  return ranges.map(([addressClass, networks]) => {
    const list = new BlockList();
    for (const [network, prefix] of networks) list.addSubnet(network, prefix, family);
    return [addressClass, list] as const;
  });
}

const IPV4_LISTS = blockLists('ipv4', IPV4_RANGES);
const IPV6_LISTS = blockLists('ipv6', IPV6_RANGES);

/** The eight 16-bit groups of a valid IPv6 address. */
function ipv6Groups(address: string): number[] {
  // A dotted IPv4 tail (::ffff:127.0.0.1) is two groups written differently.
  const text = address.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_, a, b, c, d) =>
    `${((Number(a) << 8) | Number(b)).toString(16)}:${((Number(c) << 8) | Number(d)).toString(16)}`,
  );
  const parse = (part: string | undefined) => (part ? part.split(':').map((group) => Number.parseInt(group, 16)) : []);
  const [head, tail] = text.split('::');
  const before = parse(head);
  const after = parse(tail);
  return [...before, ...Array<number>(8 - before.length - after.length).fill(0), ...after];
}

/** The IPv4 address an IPv6 one stands for: IPv4-mapped (::ffff:a.b.c.d) and NAT64 (64:ff9b::a.b.c.d). */
function embeddedIpv4(address: string): string | null {
  const groups = ipv6Groups(address);
  const zeros = (from: number, to: number) => groups.slice(from, to).every((group) => group === 0);
  const mapped = zeros(0, 5) && groups[5] === 0xffff;
  const nat64 = groups[0] === 0x64 && groups[1] === 0xff9b && zeros(2, 6);
  if (!mapped && !nat64) return null;
  const [high = 0, low = 0] = groups.slice(6);
  return `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
}

/** A zone (fe80::1%eth0) names an interface, not part of the address; URLs bracket IPv6 hosts. */
function plainAddress(address: string): string {
  return address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
}

/**
 * The class of `address` if a webhook may not reach it, or null for a public address. Anything
 * that is not an IP address is `reserved`: the guard fails closed.
 */
export function blockedAddressClass(address: string): BlockedAddressClass | null {
  const plain = plainAddress(address);
  switch (isIP(plain)) {
    case 4:
      return IPV4_LISTS.find(([, list]) => list.check(plain, 'ipv4'))?.[0] ?? null;
    case 6: {
      const ipv4 = embeddedIpv4(plain);
      if (ipv4 !== null) return blockedAddressClass(ipv4);
      return IPV6_LISTS.find(([, list]) => list.check(plain, 'ipv6'))?.[0] ?? null;
    }
    default:
      return 'reserved';
  }
}

export function isBlockedAddress(address: string): boolean {
  return blockedAddressClass(address) !== null;
}

/**
 * Why a webhook may not reach `address`, e.g. "127.0.0.1 is a loopback address; set
 * TASKPORT_WEBHOOK_ALLOW_PRIVATE=true to allow private networks", or null when it may.
 */
export function blockedAddressReason(address: string): string | null {
  const addressClass = blockedAddressClass(address);
  if (addressClass === null) return null;
  const plain = plainAddress(address);
  const family = isIP(plain);
  if (family === 0) return `${JSON.stringify(address.slice(0, 64))} is not an IP address`;
  const ipv4 = family === 6 ? embeddedIpv4(plain) : null;
  const shown = ipv4 === null ? plain : `${plain} (${ipv4})`;
  const article = /^[aeiouIE]/.test(addressClass) ? 'an' : 'a';
  return `${shown} is ${article} ${addressClass} address; ${ALLOW_PRIVATE_HINT}`;
}
