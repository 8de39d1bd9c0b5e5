import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Locator, Page } from '@playwright/test';
import {
  expect,
  gotoHydrated,
  makeProjectDir,
  makeTempDir,
  startServer,
  test,
  uniqueName,
  waitForHydration,
  type RunningServer,
} from './fixtures';

// Every test makes its own project (a fresh temp directory with a unique
// name), so the tests share one server per worker without depending on order.

const SESSIONS_PATH = /\/projects\/\d+\/sessions$/;

function projectsList(page: Page): Locator {
  return page.getByRole('list', { name: 'Projects', exact: true });
}

function projectLink(page: Page, name: string): Locator {
  return projectsList(page).getByRole('link', { name, exact: true });
}

function sessionsList(page: Page): Locator {
  return page.getByRole('list', { name: 'Sessions', exact: true });
}

function sessionLink(page: Page, name: string): Locator {
  return sessionsList(page).getByRole('link', { name, exact: true });
}

function sessionItem(page: Page, name: string): Locator {
  return sessionsList(page)
    .getByRole('listitem')
    .filter({ has: page.getByRole('link', { name, exact: true }) });
}

/** Fills and submits the "Add project" form on `/`. */
async function submitProject(page: Page, dir: string, name?: string) {
  await page.getByLabel('Project path', { exact: true }).fill(dir);
  if (name !== undefined) await page.getByLabel('Project name', { exact: true }).fill(name);
  await page.getByRole('button', { name: 'Add project', exact: true }).click();
}

/**
 * From `/`, adds a project for `dir` and opens its sessions page. Expects the
 * page at `/` to be loaded and hydrated already.
 */
async function addProjectAndOpen(page: Page, dir: string, name: string) {
  await submitProject(page, dir);
  const link = projectLink(page, name);
  await expect(link).toBeVisible();
  await link.click();
  await expect(page).toHaveURL(SESSIONS_PATH);
  await waitForHydration(page);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText(name);
}

/** A new project in the worker's server, with its sessions page open. */
async function openNewProject(page: Page, prefix = 'proj'): Promise<{ name: string; dir: string }> {
  const name = uniqueName(prefix);
  const dir = makeProjectDir(name);
  await gotoHydrated(page, '/');
  await addProjectAndOpen(page, dir, name);
  return { name, dir };
}

/** Fills and submits the "New session" form, then waits for the new link. */
async function createSession(page: Page, name: string) {
  await page.getByLabel('Session name', { exact: true }).fill(name);
  await page.getByLabel('Agent', { exact: true }).selectOption('shell');
  await page.getByRole('button', { name: 'New session', exact: true }).click();
  await expect(sessionLink(page, name)).toBeVisible();
}

/** Idle sessions show no badge at all. */
async function expectNoBadges(page: Page) {
  const list = sessionsList(page);
  await expect(list.getByRole('status')).toHaveCount(0);
  await expect(list.getByText('Processing')).toHaveCount(0);
  await expect(list.getByText(/Error/)).toHaveCount(0);
}

/** Records console errors and uncaught page errors, to assert none at the end. */
function collectPageErrors(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') {
      const { url, lineNumber } = msg.location();
      problems.push(`console.error: ${msg.text()} (${url}:${lineNumber})`);
    }
  });
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.stack || err.message}`));
  return problems;
}

async function markPage(page: Page) {
  await page.evaluate(() => {
    (window as any).__noReload = 42;
  });
}

async function expectSamePage(page: Page) {
  expect(await page.evaluate(() => (window as any).__noReload), 'the page was reloaded').toBe(42);
}

test.describe('projects page', () => {
  test('shows the heading and the add-project form', async ({ page }) => {
    const response = await gotoHydrated(page, '/');
    expect(response?.status()).toBe(200);
    await expect(page.getByRole('heading', { level: 1 })).toHaveText('Projects');
    await expect(page.getByLabel('Project path', { exact: true })).toBeVisible();
    await expect(page.getByLabel('Project name', { exact: true })).toBeVisible();
    await expect(page.getByRole('button', { name: 'Add project', exact: true })).toBeVisible();
  });

  test('adding a project lists it, named after its directory unless named', async ({ page }) => {
    const byDir = uniqueName('dirname');
    const dir1 = makeProjectDir(byDir);
    const dir2 = makeProjectDir(uniqueName('unnamed-dir'));
    const named = uniqueName('Named project');

    await gotoHydrated(page, '/');
    await submitProject(page, dir1);
    await expect(projectLink(page, byDir)).toBeVisible();
    await expect(projectLink(page, byDir)).toHaveAttribute('href', SESSIONS_PATH);

    await submitProject(page, dir2, named);
    await expect(projectLink(page, named)).toBeVisible();
    await expect(projectLink(page, path.basename(dir2))).toHaveCount(0);
    await expect(page.getByRole('alert')).toHaveCount(0);

    await page.reload();
    await waitForHydration(page);
    await expect(projectLink(page, byDir)).toBeVisible();
    await expect(projectLink(page, named)).toBeVisible();

    await projectLink(page, named).click();
    await expect(page).toHaveURL(SESSIONS_PATH);
    await expect(page.getByRole('heading', { level: 1 })).toHaveText(named);
  });

  test('adding a missing path, a file or a duplicate shows an error', async ({ page }) => {
    const parent = makeTempDir();
    try {
      const missing = path.join(parent, 'does-not-exist');
      const file = path.join(parent, 'a-file.txt');
      fs.writeFileSync(file, 'not a project\n');
      const name = uniqueName('dup');
      const dir = makeProjectDir(name);

      await gotoHydrated(page, '/');

      await submitProject(page, missing);
      await expect(page.getByRole('alert')).toContainText('No directory at');

      await submitProject(page, file);
      await expect(page.getByRole('alert')).toContainText('not a directory');

      await submitProject(page, dir);
      await expect(projectLink(page, name)).toBeVisible();
      await expect(page.getByRole('alert')).toHaveCount(0);

      await submitProject(page, dir);
      await expect(page.getByRole('alert')).toContainText('already exists');
      await expect(projectLink(page, name)).toHaveCount(1);

      // None of the failed attempts added a project.
      await page.reload();
      await waitForHydration(page);
      await expect(projectLink(page, name)).toHaveCount(1);
      await expect(projectLink(page, 'does-not-exist')).toHaveCount(0);
      await expect(projectLink(page, 'a-file.txt')).toHaveCount(0);
    } finally {
      fs.rmSync(parent, { recursive: true, force: true });
    }
  });
});

test.describe('sessions page', () => {
  test('main flow: new sessions are listed newest first, idle, and kept after reload', async ({
    page,
  }) => {
    const problems = collectPageErrors(page);
    const { name } = await openNewProject(page, 'main');

    await expect(page.getByLabel('Session name', { exact: true })).toBeVisible();
    const agent = page.getByLabel('Agent', { exact: true });
    await expect(agent).toBeVisible();
    const shell = agent.getByRole('option', { name: 'Shell', exact: true });
    await expect(shell).toHaveCount(1);
    await expect(shell).toHaveAttribute('value', 'shell');
    await expect(page.getByRole('button', { name: 'New session', exact: true })).toBeVisible();

    await markPage(page);
    await createSession(page, 'alpha');
    await createSession(page, 'beta');
    await expectSamePage(page);

    await expect(sessionsList(page).getByRole('listitem')).toHaveCount(2);
    await expect(sessionsList(page).getByRole('link')).toHaveText(['beta', 'alpha']);
    await expectNoBadges(page);

    await page.reload();
    await waitForHydration(page);
    await expect(page.getByRole('heading', { level: 1 })).toHaveText(name);
    await expect(sessionsList(page).getByRole('listitem')).toHaveCount(2);
    await expect(sessionsList(page).getByRole('link')).toHaveText(['beta', 'alpha']);
    await expectNoBadges(page);

    expect(problems, 'console errors or page errors').toEqual([]);
  });

  test('islands hydrate: forms update the page without reloading it', async ({ page }) => {
    const missingIslands: string[] = [];
    page.on('console', (msg) => {
      if (msg.text().includes('Could not find WASM function')) missingIslands.push(msg.text());
    });

    const name = uniqueName('hydrate');
    const dir = makeProjectDir(name);
    await gotoHydrated(page, '/');
    await markPage(page);
    await submitProject(page, dir);
    await expect(projectLink(page, name)).toBeVisible();
    await expectSamePage(page);

    await projectLink(page, name).click();
    await expect(page).toHaveURL(SESSIONS_PATH);
    await waitForHydration(page);
    await markPage(page);
    await createSession(page, 'hydrated');
    await expectSamePage(page);
    // The form was reset after the session was created.
    await expect(page.getByLabel('Session name', { exact: true })).toHaveValue('');

    expect(missingIslands).toEqual([]);
  });

  test('a whitespace-only session name is rejected', async ({ page }) => {
    await openNewProject(page, 'validate');
    await page.getByLabel('Session name', { exact: true }).fill('   ');
    await page.getByRole('button', { name: 'New session', exact: true }).click();
    await expect(page.getByRole('alert')).toContainText('Session name is required');
    await expect(sessionsList(page).getByRole('listitem')).toHaveCount(0);
  });

  test('sessions can be renamed and deleted, and that persists', async ({ page }) => {
    await openNewProject(page, 'edit');
    await createSession(page, 'alpha');
    await createSession(page, 'beta');
    await createSession(page, 'keep');

    // Rename alpha to gamma.
    const alpha = sessionItem(page, 'alpha');
    await alpha.locator('summary', { hasText: /^\s*Rename\s*$/ }).click();
    const newName = alpha.getByLabel('New name', { exact: true });
    await expect(newName).toBeVisible();
    await newName.fill('gamma');
    await alpha.getByRole('button', { name: 'Save', exact: true }).click();
    await expect(sessionLink(page, 'gamma')).toBeVisible();
    await expect(sessionLink(page, 'alpha')).toHaveCount(0);

    // Delete beta.
    const beta = sessionItem(page, 'beta');
    await beta.locator('summary', { hasText: /^\s*Delete\s*$/ }).click();
    await beta.getByRole('button', { name: 'Delete beta', exact: true }).click();
    await expect(sessionLink(page, 'beta')).toHaveCount(0);

    await expect(sessionsList(page).getByRole('listitem')).toHaveCount(2);
    await expect(sessionLink(page, 'gamma')).toBeVisible();
    await expect(sessionLink(page, 'keep')).toBeVisible();

    await page.reload();
    await waitForHydration(page);
    await expect(sessionsList(page).getByRole('listitem')).toHaveCount(2);
    await expect(sessionLink(page, 'gamma')).toBeVisible();
    await expect(sessionLink(page, 'keep')).toBeVisible();
    await expect(sessionLink(page, 'alpha')).toHaveCount(0);
    await expect(sessionLink(page, 'beta')).toHaveCount(0);
  });
});

test.describe('not found', () => {
  for (const url of ['/projects/999999/sessions', '/projects/not-a-number/sessions', '/no/such/page']) {
    test(`${url} is a 404 page`, async ({ page }) => {
      const res = await page.goto(url);
      expect(res, 'no response').not.toBeNull();
      expect(res!.status()).toBe(404);
      await expect(page.getByRole('heading', { name: 'Not found', exact: true })).toBeVisible();
    });
  }
});

test('sessions survive a server restart', async ({ page }) => {
  test.setTimeout(90_000);
  const dataDir = makeTempDir();
  const dbPath = path.join(dataDir, 'agentdeck.db');
  let first: RunningServer | undefined;
  let second: RunningServer | undefined;
  try {
    first = await startServer({ dbPath });
    const name = uniqueName('restart');
    const dir = makeProjectDir(name);
    await gotoHydrated(page, `${first.url}/`);
    await addProjectAndOpen(page, dir, name);
    await createSession(page, 'one');
    await createSession(page, 'two');
    await expect(sessionsList(page).getByRole('link')).toHaveText(['two', 'one']);
    const sessionsPath = new URL(page.url()).pathname;

    await first.stop();
    second = await startServer({ dbPath });
    expect(second.dbPath).toBe(first.dbPath);

    await gotoHydrated(page, `${second.url}/`);
    await expect(projectLink(page, name)).toBeVisible();

    const res = await gotoHydrated(page, `${second.url}${sessionsPath}`);
    expect(res?.status()).toBe(200);
    await expect(page.getByRole('heading', { level: 1 })).toHaveText(name);
    await expect(sessionsList(page).getByRole('link')).toHaveText(['two', 'one']);
    await expectNoBadges(page);
  } finally {
    await first?.stop();
    await second?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
