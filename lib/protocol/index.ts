export * from './agent.ts';
export * from './common.ts';
export * from './internal.ts';
export * from './limits.ts';
export * from './logs.ts';
export * from './parse.ts';
export * from './scheduler.ts';
