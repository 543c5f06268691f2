#!/usr/bin/env -S npx tsx
// The Meso node agent: `meso-agent run [--work-dir dir] [--resources spec] [--attributes spec]`.
import { main } from '../agent/main.ts';

await main();
