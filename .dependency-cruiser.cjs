/**
 * The architecture check (`npm run lint:layers`, part of `npm run lint`): Meso's folders are
 * layers, and a module may import only from its own folder or from a lower layer. Circles are
 * refused everywhere. docs/architecture.md ("Layers") says what each layer holds.
 *
 * LAYERS runs from the bottom up; folders on one line are peers and may not import each other.
 * The agent is an application of its own: it may use the shared lower layers (up to lib/config)
 * and nothing of the control plane, the CLI or the deployment.
 */

/** @type {string[][]} bottom first */
const LAYERS = [
  ['lib/definition', 'lib/protocol'], // tables, queues, environment names; the wire schemas
  ['lib/core'], // pure domain: resources, allocator, task states
  ['lib/ports'], // interfaces the control plane needs (store, bus, clock, metrics)
  ['lib/adapters'], // DynamoDB, SQS, credentials, dead-letter queues
  ['lib/config'], // how clients find a cluster
  ['lib/control'], // the control-plane services
  ['lib/testing'], // checks shared by the chaos run and the integration tests
  ['lib/frameworks'], // the built-in frameworks (services, jobs): logic, their tables, their handling of events
  ['lib/lambda'], // Lambda wiring: handlers, per-record glue, deps from the environment
  ['lib/sdk'], // the framework SDK
  ['lib/local'], // the local stack
  ['lib/cli'], // the meso command
  ['lib/build'], // the agent bundle
  ['lib/infra'], // CDK constructs: deploy only
  ['agent'], // the node daemon
  ['bin', 'functions', 'bench'], // entry points
];

/** What the agent may import from lib/. */
const AGENT_MAY_USE = [
  'lib/definition',
  'lib/protocol',
  'lib/core',
  'lib/ports',
  'lib/adapters',
  'lib/config',
];

const folder = (f) => `^${f}/`;
const anyOf = (folders) => `^(${folders.join('|')})/`;
const all = LAYERS.flat();

const upward = LAYERS.flatMap((rank, i) => {
  const higher = LAYERS.slice(i + 1).flat();
  return rank.map((f) => ({
    name: `layer:${f}`,
    comment: `${f} may import only from itself and lower layers, not from ${[...higher, ...rank.filter((p) => p !== f)].join(', ')}`,
    severity: 'error',
    from: { path: folder(f) },
    to: { path: anyOf([...higher, ...rank.filter((p) => p !== f)]) },
  }));
});

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'Modules that import each other, directly or through others.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    ...upward,
    {
      name: 'agent-uses-lower-lib-only',
      comment: `The agent may use ${AGENT_MAY_USE.join(', ')} from lib/, nothing else.`,
      severity: 'error',
      from: { path: '^agent/' },
      to: { path: '^lib/', pathNot: anyOf(AGENT_MAY_USE) },
    },
    {
      name: 'in-a-layer',
      comment: 'Every folder under lib/ is named in LAYERS.',
      severity: 'error',
      from: { path: '^lib/', pathNot: anyOf(all) },
      to: {},
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|test|cdk.out|dist|coverage)/' },
    // Type-only imports count: a circle through types is still a circle.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default'],
    },
  },
};
