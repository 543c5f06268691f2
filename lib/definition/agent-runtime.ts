/** How Node.js runs the agent on a node: the same for `meso-agent install` and the agent bundle. */

/**
 * V8 trades speed for memory: the agent is I/O-bound, and this keeps its idle RSS ~12 MB lower
 * (a smaller young generation, a heap grown less eagerly; see docs/benchmarks.md).
 */
export const NODE_FLAGS = ['--optimize-for-size'] as const;

/**
 * The agent's process environment, as installed: glibc's malloc with a fixed mmap threshold.
 * By default glibc raises the threshold when a large block is freed, so later large blocks
 * (V8 compiling the bundle at start) come from the heap and stay there once freed — about 9 MB
 * of the agent's idle RSS (docs/benchmarks.md). Tasks do not inherit it: their environment is
 * built from scratch.
 */
/**
 * The tag a fleet instance's command queue carries: the ARN of the instance that owns it. The
 * fleet's role lets an instance use only the queues tagged with its own ARN
 * (lib/infra/cdk/fleet-identity.ts).
 */
export const INSTANCE_QUEUE_TAG = 'meso:instance';

export const AGENT_ENV_VARS = { MALLOC_MMAP_THRESHOLD_: '131072' } as const;
