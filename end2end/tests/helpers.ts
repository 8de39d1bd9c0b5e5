import type { APIRequestContext, Locator, Page } from '@playwright/test';
import { expect, gotoHydrated, makeProjectDir, uniqueName, waitForHydration } from './fixtures';

// Locators, form actions and checks shared by the specs. Server and fixture
// plumbing lives in fixtures.ts.

/** A project's sessions page: `/projects/{pid}/sessions`. */
export const SESSIONS_PATH = /\/projects\/\d+\/sessions$/;
/** A session page: `/projects/{pid}/sessions/{sid}`. */
export const SESSION_PATH = /\/projects\/\d+\/sessions\/[^/?#]+$/;

/** For expectations inside a `reloadUntil` check: fail fast, then reload. */
export const QUICK = { timeout: 1_000 };

// ---------- locators ----------

export function projectsList(page: Page): Locator {
  return page.getByRole('list', { name: 'Projects', exact: true });
}

export function projectLink(page: Page, name: string): Locator {
  return projectsList(page).getByRole('link', { name, exact: true });
}

export function sessionsList(page: Page): Locator {
  return page.getByRole('list', { name: 'Sessions', exact: true });
}

export function sessionLink(page: Page, name: string): Locator {
  return sessionsList(page).getByRole('link', { name, exact: true });
}

export function sessionItem(page: Page, name: string): Locator {
  return sessionsList(page)
    .getByRole('listitem')
    .filter({ has: page.getByRole('link', { name, exact: true }) });
}

/** The session page's `<section aria-label="Status">` holding the badge. */
export function statusRegion(page: Page): Locator {
  return page.getByRole('region', { name: 'Status', exact: true });
}

export function processingBadge(scope: Locator): Locator {
  return scope.getByRole('status');
}

export function errorBadge(scope: Locator): Locator {
  return scope.getByText('Error', { exact: true });
}

/** The error tooltip, found even while it is hidden. */
export function tooltip(scope: Locator): Locator {
  return scope.getByRole('tooltip', { includeHidden: true });
}

/** The "Live" / "Reconnecting…" indicator of the page's change stream. */
export function liveIndicator(page: Page): Locator {
  return page.locator('.live-indicator');
}

export function messageInput(page: Page): Locator {
  return page.getByLabel('Message', { exact: true });
}

export function messagesList(page: Page): Locator {
  return page.getByRole('list', { name: 'Messages', exact: true });
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The conversation item whose `<pre>` holds exactly `text`. */
export function messageItem(page: Page, text: string): Locator {
  const exact = new RegExp(`^\\s*${escapeRegExp(text)}\\s*$`);
  return messagesList(page)
    .getByRole('listitem')
    .filter({ has: page.locator('pre', { hasText: exact }) });
}

// ---------- page actions ----------

/** Fills and submits the "Add project" form on `/` (naming the project if `name` is given). */
export async function submitProject(page: Page, dir: string, name?: string) {
  await page.getByLabel('Project path', { exact: true }).fill(dir);
  if (name !== undefined) await page.getByLabel('Project name', { exact: true }).fill(name);
  await page.getByRole('button', { name: 'Add project', exact: true }).click();
}

export interface OpenProjectOptions {
  /** Also check that the sessions page's heading is the project name (default true). */
  checkHeading?: boolean;
}

/**
 * From `/`, adds a project for `dir` and opens its sessions page, hydrated.
 * Expects the page at `/` to be loaded and hydrated already.
 */
export async function addProjectAndOpen(
  page: Page,
  dir: string,
  name: string,
  { checkHeading = true }: OpenProjectOptions = {},
) {
  await submitProject(page, dir);
  const link = projectLink(page, name);
  await expect(link).toBeVisible();
  await link.click();
  await expect(page).toHaveURL(SESSIONS_PATH);
  await waitForHydration(page);
  if (checkHeading) await expect(page.getByRole('heading', { level: 1 })).toHaveText(name);
}

export interface NewProject {
  name: string;
  dir: string;
  projectId: number;
  /** `/projects/{pid}/sessions` */
  listPath: string;
}

/**
 * Adds a new project through the form on `/` (of the server at `baseUrl`, or
 * the worker's server) and opens its sessions page, hydrated.
 */
export async function openNewProject(
  page: Page,
  prefix = 'proj',
  baseUrl = '',
  options: OpenProjectOptions = {},
): Promise<NewProject> {
  const name = uniqueName(prefix);
  const dir = makeProjectDir(name);
  await gotoHydrated(page, `${baseUrl}/`);
  await addProjectAndOpen(page, dir, name, options);
  const listPath = new URL(page.url()).pathname;
  const projectId = Number(/\/projects\/(\d+)\/sessions$/.exec(listPath)![1]);
  return { name, dir, projectId, listPath };
}

/** Fills and submits the "New session" form, then waits for the new link. */
export async function createSession(page: Page, name: string) {
  await page.getByLabel('Session name', { exact: true }).fill(name);
  await page.getByLabel('Agent', { exact: true }).selectOption('shell');
  await page.getByRole('button', { name: 'New session', exact: true }).click();
  await expect(sessionLink(page, name)).toBeVisible();
}

/**
 * Renames the session `name` through its "Rename" form on the sessions page.
 * With `checkField`, first checks that the "New name" field is shown.
 */
export async function renameSession(
  page: Page,
  name: string,
  newName: string,
  { checkField = false }: { checkField?: boolean } = {},
) {
  const item = sessionItem(page, name);
  await item.locator('summary', { hasText: /^\s*Rename\s*$/ }).click();
  const field = item.getByLabel('New name', { exact: true });
  if (checkField) await expect(field).toBeVisible();
  await field.fill(newName);
  await item.getByRole('button', { name: 'Save', exact: true }).click();
}

/** Deletes the session `name` through its "Delete" confirmation on the sessions page. */
export async function deleteSession(page: Page, name: string) {
  const item = sessionItem(page, name);
  await item.locator('summary', { hasText: /^\s*Delete\s*$/ }).click();
  await item.getByRole('button', { name: `Delete ${name}`, exact: true }).click();
}

/** Types `message` into the session page's form and clicks Send. */
export async function send(page: Page, message: string) {
  await messageInput(page).fill(message);
  await page.getByRole('button', { name: 'Send', exact: true }).click();
}

export async function reloadHydrated(page: Page) {
  await page.reload();
  await waitForHydration(page);
}

/**
 * Reloads `page` (waiting for hydration) until `check` passes, for at most
 * `timeoutMs`. Expectations inside `check` should use short timeouts
 * (`QUICK`) so that a failing attempt soon leads to the next reload.
 */
export async function reloadUntil(page: Page, check: () => Promise<void>, timeoutMs = 15_000) {
  await expect(async () => {
    await reloadHydrated(page);
    await check();
  }).toPass({ timeout: timeoutMs, intervals: [250, 500, 1_000] });
}

// ---------- badge checks ----------

/** Idle: no "Processing" status and no "Error" badge in `scope`. */
export async function expectNoBadge(scope: Locator, options?: { timeout?: number }) {
  await expect(processingBadge(scope)).toHaveCount(0, options);
  await expect(scope.getByText('Processing')).toHaveCount(0, options);
  await expect(errorBadge(scope)).toHaveCount(0, options);
}

/** The Error badge is shown in `scope`, focusable, with its hidden tooltip. */
export async function expectErrorBadge(scope: Locator, options?: { timeout?: number }) {
  await expect(errorBadge(scope)).toBeVisible(options);
  await expect(errorBadge(scope)).toHaveAttribute('tabindex', '0', options);
  await expect(processingBadge(scope)).toHaveCount(0, options);
  await expect(tooltip(scope)).toHaveCount(1, options);
}

/** Hovers the Error badge in `scope` and returns the (now visible) tooltip. */
export async function hoverErrorBadge(page: Page, scope: Locator): Promise<Locator> {
  const tip = tooltip(scope);
  await page.mouse.move(0, 0);
  await expect(tip).toBeHidden();
  await errorBadge(scope).hover();
  await expect(tip).toBeVisible();
  return tip;
}

// ---------- page health ----------

/**
 * Records uncaught page errors (e.g. a panic in an island), to assert none at
 * the end; with `consoleErrors`, console errors too.
 */
export function collectPageErrors(page: Page, { consoleErrors = false } = {}): string[] {
  const problems: string[] = [];
  if (consoleErrors) {
    page.on('console', (msg) => {
      if (msg.type() === 'error') {
        const { url, lineNumber } = msg.location();
        problems.push(`console.error: ${msg.text()} (${url}:${lineNumber})`);
      }
    });
  }
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.stack || err.message}`));
  return problems;
}

/** Marks the current document, so `expectSamePage` can tell it was not reloaded. */
export async function markPage(page: Page) {
  await page.evaluate(() => {
    (window as any).__noReload = 42;
  });
}

export async function expectSamePage(page: Page) {
  expect(await page.evaluate(() => (window as any).__noReload), 'the page was reloaded').toBe(42);
}

// ---------- JSON API ----------

export interface ApiSession {
  id: string;
  name: string;
  state: 'idle' | 'working' | 'error';
  error_message: string | null;
}

/** `POST /api/projects/{pid}/sessions`: a new shell session. */
export async function apiCreateSession(
  request: APIRequestContext,
  projectId: number,
  name: string,
  baseUrl = '',
): Promise<ApiSession> {
  const res = await request.post(`${baseUrl}/api/projects/${projectId}/sessions`, {
    headers: { 'Content-Type': 'application/json' },
    data: { name, agent: 'shell' },
  });
  expect(res.status(), await res.text()).toBe(201);
  return res.json();
}

/** `POST /api/sessions/{id}/messages`: starts a run. */
export async function apiSend(request: APIRequestContext, sessionId: string, message: string, baseUrl = '') {
  const res = await request.post(`${baseUrl}/api/sessions/${encodeURIComponent(sessionId)}/messages`, {
    headers: { 'Content-Type': 'application/json' },
    data: { message },
  });
  expect(res.status(), await res.text()).toBe(202);
}

/** `GET /api/sessions/{id}`: the whole answer (`session`, `messages`, …). */
export async function apiSessionDetail(request: APIRequestContext, sessionId: string, baseUrl = ''): Promise<any> {
  const res = await request.get(`${baseUrl}/api/sessions/${encodeURIComponent(sessionId)}`);
  expect(res.status(), await res.text()).toBe(200);
  return res.json();
}

/** `GET /api/sessions/{id}`: the session itself. */
export async function apiSession(request: APIRequestContext, sessionId: string, baseUrl = ''): Promise<ApiSession> {
  return (await apiSessionDetail(request, sessionId, baseUrl)).session;
}

/** Polls the API until the session is in `state`. */
export async function waitForState(
  request: APIRequestContext,
  sessionId: string,
  state: ApiSession['state'],
  baseUrl = '',
) {
  await expect
    .poll(async () => (await apiSession(request, sessionId, baseUrl)).state, {
      timeout: 15_000,
      message: `session ${sessionId} to become ${state}`,
    })
    .toBe(state);
}
