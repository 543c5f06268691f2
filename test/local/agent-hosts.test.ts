/**
 * `meso dev --agents N`: each local agent registers under its own loopback address, so
 * `hostname:UNIQUE` sees N hosts and the endpoints it lists still answer on this machine.
 */
import { once } from 'node:events';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { satisfiesAll } from '../../lib/frameworks/services/constraints.ts';
import { localAgentHostname, localAgentOptions } from '../../lib/local/agent-hosts.ts';

describe('local agents hostnames', () => {
  it('gives each of three agents its own loopback address, and one agent the machine hostname', () => {
    const three = [0, 1, 2].map((i) => localAgentHostname(i, 3));
    expect(three).toEqual(['127.0.0.1', '127.0.0.2', '127.0.0.3']);
    expect(localAgentHostname(0, 1)).toBeUndefined();
    expect(() => localAgentHostname(254, 300)).toThrow(RangeError);
  });

  it('passes the share and the hostname to each agent', () => {
    const args = [0, 1, 2].map((i) => localAgentOptions(i, 3, `/w/agent-${i}`));
    expect(args[1]).toEqual(['--work-dir', '/w/agent-1', '--share', '2/3', '--hostname', '127.0.0.2']);
    const hosts = args.map((a) => a[a.indexOf('--hostname') + 1]);
    expect(new Set(hosts).size).toBe(3);
    expect(localAgentOptions(0, 1, '/w', 'cpus:2')).toEqual(['--work-dir', '/w', '--resources', 'cpus:2']);
  });

  it('lets hostname:UNIQUE place one instance on each of the three agents', () => {
    const placed: { hostname: string; attributes: Record<string, string> }[] = [];
    for (const i of [0, 1, 2, 0, 1]) {
      const host = { hostname: localAgentHostname(i, 3)!, attributes: {} };
      if (satisfiesAll([['hostname', 'UNIQUE']], host, placed)) placed.push(host);
    }
    expect(placed.map((p) => p.hostname)).toEqual(['127.0.0.1', '127.0.0.2', '127.0.0.3']);
  });

  it("reaches a task listening on all interfaces at the third agent's address", async () => {
    const server = net.createServer((s) => s.end('hello'));
    server.listen(0, '0.0.0.0');
    await once(server, 'listening');
    const { port } = server.address() as net.AddressInfo;
    try {
      const socket = net.connect({ host: localAgentHostname(2, 3)!, port });
      const [data] = (await once(socket, 'data')) as [Buffer];
      expect(data.toString()).toBe('hello');
      socket.destroy();
    } finally {
      server.close();
    }
  });
});
