/**
 * The dashboard in a real browser (Debian's chromium driven by playwright-core) against
 * `meso dev` (what `npm start` runs): the page comes from the URL `meso dev` prints, a task
 * launched with `meso run` in another process appears RUNNING and then FINISHED, the task's
 * output (which its command controls) is shown as text and never as markup, and a screenshot of
 * the page is taken: to docs/dashboard.png when MESO_UPDATE_SCREENSHOT=1 (so a run leaves the
 * checkout as it was unless asked), else to the test's temporary directory.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const MESO = join(ROOT, 'bin/meso.js');
const CHROMIUM = '/usr/bin/chromium';

describe('the dashboard in a browser, against meso dev', () => {
  let dir: string;
  let dev: ChildProcess;
  let devOut = '';
  let url = '';
  let browser: Browser;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
    dir = await mkdtemp(join(tmpdir(), 'meso-dashboard-'));
    const env = { ...process.env };
    for (const k of Object.keys(env))
      if (k.startsWith('AWS_ENDPOINT_URL') || k.startsWith('MESO_QUEUE_') || k === 'MESO_API_PORT')
        delete env[k];
    dev = spawn(process.execPath, [MESO, 'dev', '--resources', 'cpus:2;mem:1024;disk:1024'], {
      cwd: dir,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    dev.stderr?.on('data', (d) => (devOut += d));
    await new Promise<void>((ready, fail) => {
      dev.stdout?.on('data', (d) => {
        devOut += d;
        const m = /Dashboard and operator API: (http:\/\/127\.0\.0\.1:\d+)\//.exec(devOut);
        if (m && devOut.includes('Meso is running')) {
          url = m[1]!;
          ready();
        }
      });
      dev.once('exit', (code) => fail(new Error(`meso dev exited with ${code}:\n${devOut}`)));
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    if (dev && dev.exitCode === null) {
      const exited = new Promise((r) => dev.once('exit', r));
      dev.kill('SIGINT');
      await exited;
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('shows a task RUNNING, then FINISHED with its output as text, and takes a screenshot', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    const failed: string[] = [];
    page.on('requestfailed', (r) => failed.push(r.url()));
    await page.goto(`${url}/?refresh=500`);
    await page.locator('#agents tr[data-agent-id]').first().waitFor();
    await page.locator('#totals .card').first().waitFor();

    // The task waits for a file the test writes once the page has shown it RUNNING (in a
    // directory the task's unprivileged user can read).
    const signals = join(dir, 'signals');
    await mkdir(signals, { mode: 0o755 });
    await chmod(dir, 0o755);
    await chmod(signals, 0o755);
    const go = join(signals, 'go');
    const marker = '<img src=x onerror=alert(1)>';
    const run = spawn(
      process.execPath,
      [
        MESO,
        'run',
        '--cpus',
        '0.5',
        '--mem',
        '64',
        '--',
        'sh',
        '-c',
        `echo '${marker}'; while [ ! -f ${go} ]; do sleep 0.1; done; echo finished`,
      ],
      { cwd: dir, env: { ...process.env }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.push(run);
    let runOut = '';
    run.stdout?.on('data', (d) => (runOut += d));
    run.stderr?.on('data', (d) => (runOut += d));
    const runExit = new Promise<number | null>((r) => run.once('exit', r));

    const row = page.locator('#tasks tr[data-state="TASK_RUNNING"]').first();
    await row.waitFor({ timeout: 60_000 });
    const taskId = await row.getAttribute('data-task-id');
    expect(taskId).toBeTruthy();
    await page.locator('#frameworks tr[data-framework-id]').first().waitFor();

    // The screenshot docs/ shows: the task holds its resources, its framework is subscribed.
    await page.locator('#plot canvas').waitFor();
    const shot =
      process.env.MESO_UPDATE_SCREENSHOT === '1'
        ? join(ROOT, 'docs/dashboard.png')
        : join(dir, 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect(existsSync(shot)).toBe(true);

    await writeFile(go, '');
    const done = page.locator(`#tasks tr[data-task-id="${taskId}"][data-state="TASK_FINISHED"]`);
    await done.waitFor({ timeout: 60_000 });
    expect(await runExit).toBe(0);
    expect(runOut).toContain('finished');

    // The task's output is on the page as text; no element came of it and nothing ran.
    await done.locator('details summary').click();
    const stdout = await done.locator('pre.stdout').textContent();
    expect(stdout).toContain(marker);
    expect(await page.locator('#tasks img').count()).toBe(0);
    expect(dialogs).toEqual([]);
    // Everything the page loads comes from the API's own origin (no CDN).
    expect(failed).toEqual([]);

    // Explain, from the page.
    const fw = await page
      .locator('#frameworks tr[data-framework-id]')
      .first()
      .getAttribute('data-framework-id');
    await page.fill('#explain-name', fw!);
    await page.click('#explain-form button');
    await page.locator('#explain-out', { hasText: fw! }).waitFor({ timeout: 30_000 });
  }, 180_000);
});
