import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Page } from '@playwright/test';
import {
  expect,
  gotoHydrated,
  makeProjectDir,
  makeTempDir,
  test,
  uniqueName,
  waitForHydration,
  withOneDatabase,
} from './fixtures';
import {
  SESSIONS_PATH,
  collectPageErrors,
  createSession,
  deleteSession,
  expectSamePage,
  markPage,
  openNewProject,
  projectLink,
  reloadHydrated,
  renameSession,
  sessionLink,
  sessionsList,
  submitProject,
} from './helpers';

// Every test makes its own project (a fresh temp directory with a unique
// name), so the tests share one server per worker without depending on order.

/** Idle sessions show no badge at all. */
async function expectNoBadges(page: Page) {
  const list = sessionsList(page);
  await expect(list.getByRole('status')).toHaveCount(0);
  await expect(list.getByText('Processing')).toHaveCount(0);
  await expect(list.getByText(/Error/)).toHaveCount(0);
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

    await reloadHydrated(page);
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
      await reloadHydrated(page);
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
    const problems = collectPageErrors(page, { consoleErrors: true });
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

    await reloadHydrated(page);
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

  test('islands hydrate even on a page that never goes idle', async ({ page }) => {
    // A busy main thread (slow machine, background tab) may never be idle:
    // idle callbacks then run only when given a timeout.
    await page.addInitScript(() => {
      (window as any).requestIdleCallback = (callback: () => void, options?: { timeout?: number }) => {
        if (options?.timeout !== undefined) setTimeout(callback, options.timeout);
        return 0;
      };
    });
    const name = uniqueName('busy-page');
    await gotoHydrated(page, '/');
    await markPage(page);
    await submitProject(page, makeProjectDir(name));
    await expect(projectLink(page, name)).toBeVisible();
    await expectSamePage(page);
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
    await renameSession(page, 'alpha', 'gamma', { checkField: true });
    await expect(sessionLink(page, 'gamma')).toBeVisible();
    await expect(sessionLink(page, 'alpha')).toHaveCount(0);

    // Delete beta.
    await deleteSession(page, 'beta');
    await expect(sessionLink(page, 'beta')).toHaveCount(0);

    await expect(sessionsList(page).getByRole('listitem')).toHaveCount(2);
    await expect(sessionLink(page, 'gamma')).toBeVisible();
    await expect(sessionLink(page, 'keep')).toBeVisible();

    await reloadHydrated(page);
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
  await withOneDatabase(async (start) => {
    const first = await start();
    const { name } = await openNewProject(page, 'restart', first.url);
    await createSession(page, 'one');
    await createSession(page, 'two');
    await expect(sessionsList(page).getByRole('link')).toHaveText(['two', 'one']);
    const sessionsPath = new URL(page.url()).pathname;

    await first.stop();
    const second = await start();
    expect(second.dbPath).toBe(first.dbPath);

    await gotoHydrated(page, `${second.url}/`);
    await expect(projectLink(page, name)).toBeVisible();

    const res = await gotoHydrated(page, `${second.url}${sessionsPath}`);
    expect(res?.status()).toBe(200);
    await expect(page.getByRole('heading', { level: 1 })).toHaveText(name);
    await expect(sessionsList(page).getByRole('link')).toHaveText(['two', 'one']);
    await expectNoBadges(page);
  });
});
