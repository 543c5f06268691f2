/** The services framework in the local stack (lib/local/framework-host.ts): a tick every 30 s. */
import { SERVICES } from '../frameworks/services/built-in.ts';
import type { ServicesStore } from '../frameworks/services/store.ts';
import { type LocalFramework, type LocalFrameworkOptions, startLocalFramework } from './framework-host.ts';

export type LocalServicesOptions = LocalFrameworkOptions;
export type LocalServices = LocalFramework<ServicesStore>;

export const startLocalServices = (opts: LocalServicesOptions): Promise<LocalServices> =>
  startLocalFramework(SERVICES, { defaultTickMs: 30_000, ...opts });
