#!/usr/bin/env node
// The `meso-agent` executable: loads the TypeScript sources through tsx, so no build step is needed.
import { register } from 'tsx/esm/api';

register();
await import('./meso-agent.ts');
