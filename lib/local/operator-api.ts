/**
 * The local stack's operator API and dashboard: the router (lib/control/operator-api.ts) over the
 * in-process control plane, its counters and the emulator's dead-letter queues, served on
 * 127.0.0.1 (lib/local/operator-server.ts). The caller is the local user: `MESO_PRINCIPAL`, else
 * `operator`, as for the CLI.
 */
import { deadLetterQueues } from '../adapters/dlq.ts';
import { createSqsClient } from '../adapters/sqs.ts';
import type { ClusterConfig } from '../config/cluster.ts';
import { handleOperatorApi, type StaticAsset } from '../control/operator-api.ts';
import type { LocalControlPlane } from './control-plane.ts';
import { buildDashboard } from './dashboard-assets.ts';
import { type LocalHttpServer, serveLocally } from './operator-server.ts';

export async function startLocalOperatorApi(opts: {
  readonly cluster: ClusterConfig;
  readonly controlPlane: LocalControlPlane;
  readonly port?: number;
  /** `port` is only a wish (a `--persist` stack's last port): any free port when it is taken. */
  readonly portMayMove?: boolean;
  /** The dashboard's files; built from dashboard/ when not given. */
  readonly assets?: Readonly<Record<string, StaticAsset>>;
}): Promise<LocalHttpServer> {
  const sqs = createSqsClient(opts.cluster.aws);
  const assets = opts.assets ?? (await buildDashboard());
  const served = await serveLocally(
    (req) =>
      handleOperatorApi(req, {
        control: opts.controlPlane.deps,
        counters: () => Object.fromEntries(opts.controlPlane.counters),
        dlqDepths: async () =>
          Object.fromEntries(
            (await deadLetterQueues(sqs, opts.cluster.prefix)).map((d) => [d.queue, d.count] as const),
          ),
        assets,
      }),
    {
      principal: process.env.MESO_PRINCIPAL || 'operator',
      ...(opts.port !== undefined ? { port: opts.port } : {}),
      ...(opts.portMayMove ? { portMayMove: true } : {}),
    },
  );
  return {
    ...served,
    close: async () => {
      await served.close();
      sqs.destroy();
    },
  };
}
