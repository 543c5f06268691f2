/** A `--persist` stack records its ports and asks for them again; one it cannot have is said. */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { readStackPorts, recordStackPorts } from '../../../lib/local/persist-ports.ts';
import { tempDir } from '../../agent/helpers.ts';

let dir: Awaited<ReturnType<typeof tempDir>>;
beforeEach(async () => {
  dir = await tempDir('meso-ports-');
});
afterEach(async () => {
  await dir.remove();
});

it('records the ports and reads them back on the next start', () => {
  expect(readStackPorts(dir.path)).toEqual({});
  const moved = recordStackPorts(
    dir.path,
    {},
    {
      dynamoEndpoint: 'http://127.0.0.1:45019',
      sqsEndpoint: 'http://127.0.0.1:45020',
    },
  );
  expect(moved).toEqual([]);
  expect(readStackPorts(dir.path)).toEqual({ dynamo: 45019, sqs: 45020 });
});

it('a port that could not be had again is said, with what it means for clients', () => {
  const moved = recordStackPorts(
    dir.path,
    { dynamo: 45019, sqs: 45020 },
    {
      dynamoEndpoint: 'http://127.0.0.1:45019',
      sqsEndpoint: 'http://127.0.0.1:46000',
    },
  );
  expect(moved).toEqual([
    "SQS's port 45020 is taken by another program; it is on 46000 now, so clients started before this restart must be started again.",
  ]);
});

it('behind the identity gateway, the gateway, the emulator and the operator API are each kept', () => {
  const ports = {
    dynamoEndpoint: 'http://127.0.0.1:45019',
    sqsEndpoint: 'http://127.0.0.1:45020',
    sqsEmulatorEndpoint: 'http://127.0.0.1:45021',
    apiUrl: 'http://127.0.0.1:45022',
  };
  expect(recordStackPorts(dir.path, {}, ports)).toEqual([]);
  expect(readStackPorts(dir.path)).toEqual({ dynamo: 45019, sqs: 45020, sqsEmulator: 45021, api: 45022 });
  // The emulator behind the gateway may move unsaid: no client talks to it directly.
  expect(
    recordStackPorts(dir.path, readStackPorts(dir.path), {
      ...ports,
      sqsEmulatorEndpoint: 'http://127.0.0.1:46001',
      apiUrl: 'http://127.0.0.1:46002',
    }),
  ).toEqual([
    "The operator API's port 45022 is taken by another program; it is on 46002 now, so clients started before this restart must be started again.",
  ]);
});

it('a damaged ports file is ignored, and hostile values are not used', async () => {
  await writeFile(join(dir.path, 'ports.json'), '{"dynamo": "22", "sqs": 70000');
  expect(readStackPorts(dir.path)).toEqual({});
  await writeFile(join(dir.path, 'ports.json'), '{"dynamo": 0.5, "sqs": 70000}');
  expect(readStackPorts(dir.path)).toEqual({});
});
