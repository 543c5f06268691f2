/** Queue URLs exactly as derived: the control plane sends only to a framework's or agent's own queue. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ownQueueProblem, ownQueueUrlProblem, queueHome } from '../../lib/control/reject.ts';
import { frameworkQueueName, ownQueueUrl, queueHomeOf, queueUrlProblem } from '../../lib/protocol/queues.ts';
import { frameworkQueueName as sdkFrameworkQueueName } from '../../lib/sdk/calls.ts';

const AWS = 'https://sqs.eu-west-1.amazonaws.com/123456789012';
const config = {
  prefix: 'meso',
  queues: {
    schedulerCalls: `${AWS}/meso-cp-scheduler-calls.fifo`,
    agentCalls: `${AWS}/meso-cp-agent-calls.fifo`,
    allocator: `${AWS}/meso-cp-allocator.fifo`,
    timers: `${AWS}/meso-cp-timers`,
  },
};
const home = queueHome(config);

describe('queueUrlProblem: exactly the derived URL', () => {
  it('accepts the queue the id owns, and only that one', () => {
    expect(ownQueueUrl(home, 'agent', 'a1')).toBe(`${AWS}/meso-agent-a1.fifo`);
    expect(queueUrlProblem(home, 'agent', `${AWS}/meso-agent-a1.fifo`, 'a1')).toBeUndefined();
    expect(queueUrlProblem(home, 'framework', `${AWS}/meso-fw-f1.fifo`, 'f1')).toBeUndefined();
    expect(queueUrlProblem(home, 'agent', `${AWS}/meso-agent-victim.fifo`, 'evil')).toMatch(
      /not the queue of agent evil/,
    );
    expect(queueUrlProblem(home, 'framework', `${AWS}/meso-fw-victim.fifo`, 'thief')).toMatch(
      /not the queue of framework thief/,
    );
  });

  const hostile: [string, string][] = [
    ['another host', 'https://evil.example.com/1/meso-agent-x.fifo'],
    ['another host, same account', 'https://evil.example.com/123456789012/meso-agent-x.fifo'],
    ['another scheme', 'ftp://x/meso-fw-x.fifo'],
    ['ftp on the real host', 'ftp://sqs.eu-west-1.amazonaws.com/123456789012/meso-agent-x.fifo'],
    ['http in AWS', 'http://sqs.eu-west-1.amazonaws.com/123456789012/meso-agent-x.fifo'],
    ['userinfo', 'https://user:pass@sqs.eu-west-1.amazonaws.com/123456789012/meso-agent-x.fifo'],
    ['userinfo that hides the host', `${AWS}@evil.example.com/123456789012/meso-agent-x.fifo`],
    ['a query', `${AWS}/meso-agent-x.fifo?Action=DeleteQueue`],
    ['an empty query', `${AWS}/meso-agent-x.fifo?`],
    ['a fragment', `${AWS}/meso-agent-x.fifo#x`],
    ['an empty suffix', `${AWS}/meso-agent-.fifo`],
    ["the control plane's agent-calls", `${AWS}/meso-cp-agent-calls.fifo`],
    ["the control plane's agent-calls DLQ", `${AWS}/meso-cp-agent-calls-dlq.fifo`],
    ['another account', 'https://sqs.eu-west-1.amazonaws.com/999999999999/meso-agent-x.fifo'],
    ['another region', 'https://sqs.us-east-1.amazonaws.com/123456789012/meso-agent-x.fifo'],
    ['a port', 'https://sqs.eu-west-1.amazonaws.com:8443/123456789012/meso-agent-x.fifo'],
    ['a path around the name', `${AWS}/x/../meso-agent-x.fifo`],
    ['percent-encoding', `${AWS}/meso-agent-%78.fifo`],
    ['a trailing slash', `${AWS}/meso-agent-x.fifo/`],
    ['a standard queue', `${AWS}/meso-agent-x`],
    ['another prefix', `${AWS}/other-agent-x.fifo`],
    ['a framework queue for an agent', `${AWS}/meso-fw-x.fifo`],
    ['not a URL', 'meso-agent-x.fifo'],
    ['upper-case host', 'https://SQS.eu-west-1.amazonaws.com/123456789012/meso-agent-x.fifo'],
  ];
  it.each(hostile)('refuses %s: %s', (_what, url) => {
    expect(queueUrlProblem(home, 'agent', url)).toBeDefined();
    expect(queueUrlProblem(home, 'agent', url, 'x')).toBeDefined();
    expect(ownQueueUrlProblem(config, 'agent', url, 'x')).toBeDefined();
  });

  it('the check REGISTER and SUBSCRIBE make today already refuses all but the other-host cases', () => {
    const stillOpen = new Set([
      'another host',
      'another host, same account',
      'another account',
      'another region',
      'a port',
      'upper-case host',
    ]);
    for (const [what, url] of hostile) {
      if (stillOpen.has(what)) continue;
      expect([what, ownQueueProblem('meso', 'agent', url)]).toEqual([what, expect.any(String)]);
    }
    expect(ownQueueProblem('meso', 'agent', `${AWS}/meso-agent-x.fifo`)).toBeUndefined();
  });

  it("locally: the emulator's scheme, host and port", () => {
    const local = queueHomeOf('http://127.0.0.1:4566/000000000000/meso-agent-calls.fifo', 'meso', [
      'meso-agent-calls.fifo',
    ]);
    expect(
      queueUrlProblem(local, 'agent', 'http://127.0.0.1:4566/000000000000/meso-agent-a.fifo', 'a'),
    ).toBeUndefined();
    expect(
      queueUrlProblem(local, 'agent', 'http://localhost:4566/000000000000/meso-agent-a.fifo', 'a'),
    ).toBeDefined();
    expect(
      queueUrlProblem(local, 'agent', 'http://127.0.0.1:4567/000000000000/meso-agent-a.fifo', 'a'),
    ).toBeDefined();
    expect(() =>
      queueHomeOf('http://sqs.us-east-1.amazonaws.com/1/meso-agent-calls.fifo', 'meso', []),
    ).toThrow(/https/);
  });

  it('any string other than the derived URL is refused (property)', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Za-z0-9_-]{1,40}$/), fc.string({ maxLength: 200 }), (id, url) => {
        const want = ownQueueUrl(home, 'agent', id)!;
        expect(queueUrlProblem(home, 'agent', url, id) === undefined).toBe(url === want);
        const mutated = `${want.slice(0, 8)}${url}${want.slice(8)}`;
        if (url !== '') expect(queueUrlProblem(home, 'agent', mutated, id)).toBeDefined();
      }),
      { numRuns: 1000 },
    );
  });

  it("framework queue names are the SDK's, long and odd ids included (property)", () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/), (id) => {
        const name = frameworkQueueName('meso', id)!;
        expect(name).toBe(sdkFrameworkQueueName('meso', id));
        expect(name.length).toBeLessThanOrEqual(80);
        expect(queueUrlProblem(home, 'framework', `${AWS}/${name}`, id)).toBeUndefined();
      }),
      { numRuns: 500 },
    );
  });
});

describe('ownQueueUrlProblem with a misconfigured deployment', () => {
  it('refuses every URL instead of throwing (a throw would retry the call)', () => {
    const bad = { ...config, queues: { ...config.queues, agentCalls: 'meso-agent-calls.fifo' } };
    expect(ownQueueUrlProblem(bad, 'agent', `${AWS}/meso-agent-x.fifo`, 'x')).toMatch(/not usable/);
  });
});
