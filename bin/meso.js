#!/usr/bin/env node
// The `meso` executable: loads the TypeScript sources through tsx, so no build step is needed.
import { ensurePinnedNode } from './pinned-node.js';

ensurePinnedNode(import.meta.url);
const { register } = await import('tsx/esm/api');
register();
await import('./meso.ts');
