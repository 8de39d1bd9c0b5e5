import { test, type APIRequestContext, type Locator, type Page } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect, gotoHydrated, makeTempDir, startServer, uniqueName, type RunningServer } from './fixtures';
import {
  apiCreateSession,
  apiSend,
  apiSessionDetail,
  collectPageErrors,
  errorBadge,
  expectNoBadge,
  expectSamePage,
  liveIndicator,
  markPage,
  messageItem,
  processingBadge,
  statusRegion,
} from './helpers';

// Two instances on one PostgreSQL database: two real `agentdeck serve`
// release binaries (A and B) on a scratch database, and a Chromium page on
// B following runs that A starts and owns. B's page learns of A's changes
// through the shared change log (LISTEN/NOTIFY wakes B's tailer), gets A's
// output lines forwarded best effort, and its Cancel reaches the run on A.
//
// Needs AGENTDECK_TEST_PG_URL, an admin URL to a throwaway cluster (see the
// "two instances on one PostgreSQL" step of scripts/test.sh, which starts one
// with pg_virtualenv); without it every test here is skipped. Each test gets
// a database of its own, created and dropped through `psql`.
//
// This file uses Playwright's own `test`, not the fixture's: its worker
// server (SQLite) is not needed here.

const ADMIN_URL = process.env.AGENTDECK_TEST_PG_URL;

test.skip(
  !ADMIN_URL,
  'needs PostgreSQL: set AGENTDECK_TEST_PG_URL to an admin URL of a throwaway cluster ' +
    '(scripts/test.sh runs this spec under pg_virtualenv)',
);

/** A page on B catching up on A's changes (NOTIFY, or the tailer's poll). */
const LIVE = { timeout: 15_000 };
/** A run's end, seen live on B. */
const RUN_END = { timeout: 20_000 };
/** Forwarded output is best effort: allow it plenty of time. */
const FORWARDED = { timeout: 15_000 };

/** "working", "working 850 ms", "working 3.1 s", "working 1m 12s". */
const ELAPSED = /^working( \d+(\.\d)? s| \d+ ms| \d+m \d+s)?$/;

// ---------- the scratch database ----------

function psql(sql: string) {
  execFileSync('psql', [ADMIN_URL!, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', sql], {
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 30_000,
  });
}

/** The admin URL with its database name replaced by `name`. */
function urlOf(name: string): string {
  const url = new URL(ADMIN_URL!);
  url.pathname = `/${name}`;
  return url.toString();
}

// ---------- per-test state ----------

interface Instances {
  dbName: string;
  a: RunningServer;
  b: RunningServer;
  /** Temp directories to remove afterwards (project dirs, data dirs). */
  dirs: string[];
}

let current: Partial<Instances> & { dirs: string[] } = { dirs: [] };

test.beforeEach(async () => {
  test.setTimeout(120_000);
  const dbName = `agentdeck_e2e_${randomBytes(6).toString('hex')}`;
  psql(`CREATE DATABASE ${dbName}`);
  current = { dbName, dirs: [] };
  const databaseUrl = urlOf(dbName);
  // One after the other: the first migrates the new database.
  current.a = await startServer({ databaseUrl, args: ['--lease', '30'] });
  current.dirs.push(current.a.dataDir);
  current.b = await startServer({ databaseUrl, args: ['--lease', '30'] });
  current.dirs.push(current.b.dataDir);
});

test.afterEach(async ({}, testInfo) => {
  const { a, b, dbName, dirs } = current;
  if (testInfo.status !== testInfo.expectedStatus) {
    for (const [name, server] of [
      ['A', a],
      ['B', b],
    ] as const) {
      if (server) await testInfo.attach(`${name}'s stderr`, { body: server.stderr() });
    }
  }
  await b?.stop();
  await a?.stop();
  if (dbName) psql(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  current = { dirs: [] };
});

// ---------- helpers ----------

function liveOutput(page: Page): Locator {
  return page.locator('pre.live-output[aria-label="Live output"]');
}

function elapsed(scope: Locator): Locator {
  return scope.locator('.elapsed');
}

interface Made {
  sessionId: string;
  sessionName: string;
  /** `/projects/{pid}/sessions/{sid}`, the same on every instance. */
  sessionPath: string;
}

/** A project (a new temp directory) with one shell session, made through `server`'s API. */
async function shellSession(request: APIRequestContext, server: RunningServer): Promise<Made> {
  const name = uniqueName('inst');
  const parent = makeTempDir('agentdeck-e2e-proj-');
  current.dirs.push(parent);
  const dir = path.join(parent, name);
  fs.mkdirSync(dir);
  const added = await request.post(`${server.url}/api/projects`, {
    headers: { 'Content-Type': 'application/json' },
    data: { path: fs.realpathSync(dir) },
  });
  expect(added.status(), await added.text()).toBe(201);
  const projectId = (await added.json()).id as number;
  const session = await apiCreateSession(request, projectId, name, server.url);
  return {
    sessionId: session.id,
    sessionName: session.name,
    sessionPath: `/projects/${projectId}/sessions/${encodeURIComponent(session.id)}`,
  };
}

/** Opens the session page on `server`, hydrated and connected to its stream. */
async function openOn(page: Page, server: RunningServer, made: Made) {
  const res = await gotoHydrated(page, `${server.url}${made.sessionPath}`);
  expect(res?.status()).toBe(200);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText(made.sessionName);
  const indicator = liveIndicator(page);
  await expect(indicator).toHaveText('Live', LIVE);
  await markPage(page);
  await expectNoBadge(statusRegion(page));
}

async function expectWorking(status: Locator, options?: { timeout?: number }) {
  await expect(processingBadge(status)).toContainText('Processing', options);
  await expect(errorBadge(status)).toHaveCount(0);
  await expect(elapsed(status)).toHaveText(ELAPSED);
}

/** Whether process group `pgid` still has a member (signal 0 to the group). */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// ---------- tests ----------

test.describe('two real binaries on one database with a Playwright page on B following a run started on A', () => {
  test('a run started through A shows on B live: working, its output, then idle with the answer', async ({
    page,
    request,
  }) => {
    const { a, b } = current as Instances;
    const problems = collectPageErrors(page);
    const made = await shellSession(request, a);
    await openOn(page, b, made);
    const status = statusRegion(page);
    const command = 'echo from-a; sleep 3; echo done-a';

    await apiSend(request, made.sessionId, command, a.url);

    // B's page, never reloaded, shows the run A started…
    await expectWorking(status, LIVE);
    await expect(messageItem(page, command)).toHaveCount(1, LIVE);
    // …and the output line A's run printed, forwarded while it runs.
    const output = liveOutput(page);
    await expect(output).toContainText('from-a', FORWARDED);
    const snapshot = await page.evaluate(() => ({
      output: document.querySelector('pre.live-output')?.textContent ?? '',
      working: !!document.querySelector('section[aria-label="Status"] [role="status"]'),
    }));
    expect(snapshot.working, 'the run was still going when "from-a" showed on B').toBe(true);
    expect(snapshot.output).toContain('from-a');
    expect(snapshot.output).not.toContain('done-a');

    // The run ends on A: idle on B, with the agent's answer.
    await expectNoBadge(status, RUN_END);
    await expect(messageItem(page, command)).toContainText(/succeeded/, RUN_END);
    await expect(messageItem(page, 'from-a\ndone-a')).toHaveCount(1, LIVE);
    await expect(liveOutput(page)).toHaveCount(0);

    // Both instances agree (they read one database).
    for (const server of [a, b]) {
      const detail = await apiSessionDetail(request, made.sessionId, server.url);
      expect(detail.session.state).toBe('idle');
      expect(detail.runs[0].outcome).toBe('succeeded');
      expect(detail.messages.map((m: { content: string }) => m.content)).toEqual([command, 'from-a\ndone-a']);
    }

    await expectSamePage(page);
    await expect(liveIndicator(page)).toHaveText('Live');
    expect(problems, 'page errors on B').toEqual([]);
  });

  test("Cancel on B's page stops the run that A owns", async ({ page, request }) => {
    const { a, b } = current as Instances;
    const problems = collectPageErrors(page);
    const made = await shellSession(request, a);
    await openOn(page, b, made);
    const status = statusRegion(page);

    await apiSend(request, made.sessionId, 'sleep 60', a.url);
    await expectWorking(status, LIVE);

    // The run's process, as A recorded it.
    let pgid = 0;
    await expect
      .poll(
        async () => {
          const detail = await apiSessionDetail(request, made.sessionId, a.url);
          pgid = detail.runs?.[0]?.pid ?? 0;
          return pgid;
        },
        { timeout: 10_000, message: "the run's pid on A" },
      )
      .toBeGreaterThan(0);
    try {
      expect(groupAlive(pgid), "the run's process group is running").toBe(true);

      const cancel = status.getByRole('button', { name: 'Cancel', exact: true });
      await expect(cancel).toBeVisible();
      await cancel.click();
      await expectNoBadge(status, LIVE);
      await expect(cancel).toHaveCount(0);
      await expect(messageItem(page, 'sleep 60')).toContainText(/cancelled/, LIVE);

      // A, the owner, shows the run cancelled, and its process is gone.
      await expect
        .poll(
          async () => {
            const detail = await apiSessionDetail(request, made.sessionId, a.url);
            return [detail.session.state, detail.runs[0].outcome];
          },
          { timeout: 10_000, message: 'the run cancelled on A' },
        )
        .toEqual(['idle', 'cancelled']);
      await expect
        .poll(() => groupAlive(pgid), { timeout: 10_000, message: `process group ${pgid} to end` })
        .toBe(false);
      const onB = await apiSessionDetail(request, made.sessionId, b.url);
      expect(onB.session.state).toBe('idle');
      expect(onB.runs[0].outcome).toBe('cancelled');
    } finally {
      if (pgid > 0 && groupAlive(pgid)) process.kill(-pgid, 'SIGKILL');
    }

    await expectSamePage(page);
    expect(problems, 'page errors on B').toEqual([]);
  });
});
