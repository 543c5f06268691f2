/**
 * EC2 attributes: on an EC2 instance the agent adds its instance type and availability zone to
 * its attributes (`ec2.instance-type`, `ec2.availability-zone`), read from the instance metadata
 * service (IMDSv2: a session token, then two reads) with a short timeout.
 *
 * The metadata service is only asked when the machine says it is EC2 (its DMI vendor or
 * hypervisor uuid), or when told to (`--ec2-metadata on`); `off` never asks. The HTTP client and
 * the endpoint are injectable, so tests never reach 169.254.169.254.
 */
import { readText } from './checkpoint.ts';

export const IMDS_ENDPOINT = 'http://169.254.169.254';

export interface Ec2MetadataOptions {
  /** Default: IMDS_ENDPOINT. */
  readonly endpoint?: string;
  /** Per request. Default 1000. */
  readonly timeoutMs?: number;
  /** Default: the global fetch. */
  readonly fetch?: typeof fetch;
}

/** Whether this machine identifies itself as an EC2 instance (no network involved). */
export function looksLikeEc2(read: (file: string) => string | undefined = readText): boolean {
  const vendor =
    read('/sys/devices/virtual/dmi/id/sys_vendor') ?? read('/sys/devices/virtual/dmi/id/board_vendor');
  if (vendor?.trim() === 'Amazon EC2') return true;
  const uuid = read('/sys/hypervisor/uuid') ?? read('/sys/devices/virtual/dmi/id/product_uuid');
  return uuid?.trim().toLowerCase().startsWith('ec2') ?? false;
}

/**
 * The instance's type and zone as attributes; throws when the metadata service does not answer.
 *
 * @example
 * const attrs = looksLikeEc2() ? await ec2Attributes() : {};
 * // { 'ec2.instance-type': 'm7g.large', 'ec2.availability-zone': 'us-east-1a' }
 */
export async function ec2Attributes(o: Ec2MetadataOptions = {}): Promise<Record<string, string>> {
  const base = o.endpoint ?? IMDS_ENDPOINT;
  const doFetch = o.fetch ?? fetch;
  const timeoutMs = o.timeoutMs ?? 1000;
  const tokenRes = await doFetch(`${base}/latest/api/token`, {
    method: 'PUT',
    headers: { 'X-aws-ec2-metadata-token-ttl-seconds': '60' },
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (!tokenRes.ok) throw new Error(`IMDS token: HTTP ${tokenRes.status}`);
  const token = (await tokenRes.text()).trim();
  const get = async (path: string): Promise<string> => {
    const res = await doFetch(`${base}/latest/meta-data/${path}`, {
      headers: { 'X-aws-ec2-metadata-token': token },
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!res.ok) throw new Error(`IMDS ${path}: HTTP ${res.status}`);
    return (await res.text()).trim();
  };
  const [type, zone] = await Promise.all([get('instance-type'), get('placement/availability-zone')]);
  return { 'ec2.instance-type': type, 'ec2.availability-zone': zone };
}
