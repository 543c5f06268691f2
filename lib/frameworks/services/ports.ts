/** Host ports for a task: the first free ports of an offer's ranges. */
export type PortRange = readonly [number, number];

/** Takes `count` ports from `ranges` (lowest first); undefined when they hold fewer. */
export function takePorts(
  ranges: readonly PortRange[],
  count: number,
): { ports: number[]; rest: PortRange[] } | undefined {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const ports: number[] = [];
  const rest: PortRange[] = [];
  for (const [begin, end] of sorted) {
    let b = begin;
    while (ports.length < count && b <= end) ports.push(b++);
    if (b <= end) rest.push([b, end]);
  }
  return ports.length === count ? { ports, rest } : undefined;
}

/** A task's port resources: one single-port range per port. */
export const portRanges = (ports: readonly number[]): [number, number][] => ports.map((p) => [p, p]);

/** PORT0..PORTn-1 and PORT (= PORT0), as Marathon sets them. */
export function portEnv(ports: readonly number[]): Record<string, string> {
  const env: Record<string, string> = {};
  ports.forEach((p, i) => {
    env[`PORT${i}`] = String(p);
  });
  if (ports.length > 0) {
    env.PORT = String(ports[0]);
    env.PORTS = ports.join(',');
  }
  return env;
}
