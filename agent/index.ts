/** The Meso node agent: the Agent, its executor, status update manager and resource detection. */
export * from './agent.ts';
export * from './executor.ts';
export * from './log.ts';
export * from './resources.ts';
export * from './status-updates.ts';
