import * as fs from 'node:fs';
import * as path from 'node:path';
import type { APIRequestContext, Page } from '@playwright/test';
import {
  expect,
  gotoHydrated,
  makeProjectDir,
  startServer,
  test,
  uniqueName,
  type RunningServer,
} from './fixtures';
import { apiSend, apiSession, collectPageErrors, messageItem, statusRegion, waitForState } from './helpers';

// Approvals: agentdeck runs Claude Code over its stream-json control
// protocol; each tool use Claude asks for becomes a request any tab can
// answer. The stand-in `claude` here speaks that protocol exactly: it asks
// with `can_use_tool`, waits for the matching `control_response`, and (when
// allowed) runs the Bash command it was sent back.

const FAKE_CLAUDE = path.resolve(__dirname, '../../app/tests/fixtures/bin/claude');
const LIVE = { timeout: 15_000 };

let server: RunningServer;

test.beforeAll(async () => {
  server = await startServer({ args: ['--claude-bin', FAKE_CLAUDE] });
});

test.afterAll(async () => {
  await server?.stop();
});

interface Made {
  dir: string;
  projectId: number;
  sessionId: string;
  url: string;
}

/** A new project with one Claude session, made through the API. */
async function claudeSession(request: APIRequestContext, mode?: string): Promise<Made> {
  const name = uniqueName('appr');
  const dir = makeProjectDir(name);
  const added = await request.post(`${server.url}/rpc/add_project`, {
    headers: { Accept: 'application/json' },
    form: { path: dir },
  });
  expect(added.status(), await added.text()).toBe(200);
  const projectId = (await added.json()).id as number;
  const created = await request.post(`${server.url}/api/projects/${projectId}/sessions`, {
    data: { name, agent: 'claude', ...(mode ? { permission_mode: mode } : {}) },
  });
  expect(created.status(), await created.text()).toBe(201);
  const sessionId = (await created.json()).id as string;
  return { dir, projectId, sessionId, url: `${server.url}/projects/${projectId}/sessions/${sessionId}` };
}

function requests(page: Page) {
  return page.getByRole('region', { name: 'Approval requests' });
}

function pendingRequest(page: Page) {
  return requests(page).locator('li.approval[data-status="pending"]');
}

async function pendingIds(request: APIRequestContext): Promise<string[]> {
  const res = await request.get(`${server.url}/api/approvals`);
  expect(res.status()).toBe(200);
  return (await res.json()).map((a: { id: string }) => a.id);
}

test('a request shows in every tab; Allow in the second one reaches the agent and resolves it in the first', async ({
  browser,
  request,
}) => {
  const made = await claudeSession(request);
  const first = await browser.newPage();
  const second = await browser.newPage();
  const errors = [...collectPageErrors(first), ...collectPageErrors(second)];
  await gotoHydrated(first, made.url);
  await gotoHydrated(second, made.url);

  await apiSend(request, made.sessionId, 'ask:touch approved.txt', server.url);
  for (const page of [first, second]) {
    await expect(pendingRequest(page)).toHaveCount(1, LIVE);
    await expect(pendingRequest(page)).toContainText('Bash');
    await expect(pendingRequest(page).locator('code')).toHaveText('touch approved.txt');
    await expect(statusRegion(page).locator('.attention')).toHaveText('Needs approval');
    await expect(page).toHaveTitle(/^\(needs you\) /);
    await expect(page.getByRole('button', { name: 'Allow always for this session' })).toBeVisible();
  }
  expect(fs.existsSync(path.join(made.dir, 'approved.txt'))).toBe(false);

  const clicked = Date.now();
  await second.getByRole('button', { name: 'Allow', exact: true }).click();
  // The time from the click to the agent reading the answer on its stdin.
  const answeredFile = path.join(made.dir, '.fake-agent-answered');
  await expect.poll(() => fs.existsSync(answeredFile), LIVE).toBe(true);
  const receivedAt = Number(fs.readFileSync(answeredFile, 'utf8').trim().split('\n')[0]);
  console.log(`click on Allow → agent received the answer: ${(receivedAt - clicked).toFixed(1)} ms`);

  for (const page of [first, second]) {
    await expect(pendingRequest(page)).toHaveCount(0, LIVE);
    await expect(requests(page).locator('li.approval[data-status="allowed"]')).toContainText('Allowed');
    await expect(messageItem(page, 'allowed: ran touch approved.txt (exit 0)')).toBeVisible(LIVE);
    await expect(statusRegion(page).locator('.attention')).toHaveCount(0);
    await expect(page).not.toHaveTitle(/needs you/);
  }
  expect(fs.existsSync(path.join(made.dir, 'approved.txt'))).toBe(true);
  await waitForState(request, made.sessionId, 'idle', server.url);
  // The first tab no longer offers buttons for it; an answer now is a conflict.
  await expect(first.getByRole('button', { name: 'Allow', exact: true })).toHaveCount(0);
  expect(errors).toEqual([]);
  await first.close();
  await second.close();
});

test('Deny with a message: the agent is told why and goes on without the tool', async ({ page, request }) => {
  const made = await claudeSession(request);
  await gotoHydrated(page, made.url);
  await apiSend(request, made.sessionId, 'ask:touch denied.txt', server.url);
  await expect(pendingRequest(page)).toHaveCount(1, LIVE);
  await pendingRequest(page).getByLabel('Reason for denying (optional)').fill('not in this repo');
  await pendingRequest(page).getByRole('button', { name: 'Deny' }).click();
  await expect(messageItem(page, 'denied: not in this repo')).toBeVisible(LIVE);
  await expect(requests(page).locator('li.approval[data-status="denied"]')).toContainText(
    'Denied: not in this repo',
  );
  // The run says which tools were denied.
  await expect(page.locator('.run-meta').last()).toContainText('denied: Bash', LIVE);
  expect(fs.existsSync(path.join(made.dir, 'denied.txt'))).toBe(false);
  expect(await pendingIds(request)).toEqual([]);
});

test('the overview and the tab title show "needs you" and clear once answered', async ({ page, request }) => {
  const made = await claudeSession(request);
  await gotoHydrated(page, `${server.url}/`);
  await apiSend(request, made.sessionId, 'ask:true', server.url);
  const active = page.getByRole('list', { name: 'Active sessions' });
  await expect(active.locator('.attention')).toHaveText(['Needs approval'], LIVE);
  await expect(page).toHaveTitle(/needs you/, LIVE);

  const [id] = await pendingIds(request);
  const res = await request.post(`${server.url}/api/approvals/${id}`, { data: { decision: 'allow' } });
  expect(res.status(), await res.text()).toBe(200);
  const again = await request.post(`${server.url}/api/approvals/${id}`, { data: { decision: 'deny' } });
  expect(again.status()).toBe(409);
  await expect(active.locator('.attention')).toHaveCount(0, LIVE);
  await expect(page).not.toHaveTitle(/needs you/, LIVE);
});

test('the permission mode is chosen per session, changed while idle, and passed to Claude', async ({
  page,
  request,
}) => {
  const made = await claudeSession(request, 'plan');
  await gotoHydrated(page, made.url);
  const mode = page.getByRole('combobox', { name: 'Permission mode' });
  await expect(mode).toHaveValue('plan');
  await mode.selectOption({ label: 'Bypass (no approvals)' });
  await page.getByRole('button', { name: 'Change mode' }).click();
  await expect(page.getByRole('note')).toContainText('without asking', LIVE);
  await expect.poll(async () => (await apiSession(request, made.sessionId, server.url) as any).permission_mode).toBe(
    'bypass',
  );
  await mode.selectOption({ label: 'Accept edits' });
  await page.getByRole('button', { name: 'Change mode' }).click();
  await expect(page.getByRole('note')).toHaveCount(0, LIVE);

  // While a run works the mode cannot change; the run got the chosen mode.
  await apiSend(request, made.sessionId, 'ask:true', server.url);
  await expect(mode).toBeDisabled(LIVE);
  await expect
    .poll(() => fs.existsSync(path.join(made.dir, '.fake-agent-mode')) && fs.readFileSync(path.join(made.dir, '.fake-agent-mode'), 'utf8').trim(), LIVE)
    .toBe('acceptEdits');
  await page.getByRole('button', { name: 'Cancel' }).click();
  await expect(mode).toBeEnabled(LIVE);
  await page.reload();
  await expect(page.getByRole('combobox', { name: 'Permission mode' })).toHaveValue('accept_edits');
});
