import type { Page } from '@playwright/test';
import { expect, makeProjectDir, test, uniqueName } from './fixtures';
import {
  QUICK,
  SESSIONS_PATH,
  SESSION_PATH,
  createSession,
  deleteSession,
  messageItem,
  projectLink,
  renameSession,
  send,
  sessionLink,
  submitProject,
} from './helpers';

// Every form works before hydration, and with JavaScript off: a plain POST
// to the server function, which redirects back to the page on success and
// answers a refusal with a page that says why.
test.use({ javaScriptEnabled: false });

/** The page a refused form post shows: its status, and the error in an alert. */
async function expectRefusal(page: Page, message: RegExp) {
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Not saved');
  await expect(page.getByRole('alert')).toHaveText(message);
  expect(await page.content()).not.toMatch(/\{"(Conflict|Invalid|NotFound)"/);
}

/** The page is `url`'s path again (the redirect may add an empty query). */
async function expectBackOn(page: Page, url: string) {
  await expect.poll(() => new URL(page.url()).pathname).toBe(new URL(url).pathname);
}

/** Reloads (a plain GET, no JavaScript) until `check` passes. */
async function reloadUntil(page: Page, check: () => Promise<void>) {
  await expect(async () => {
    await page.reload();
    await check();
  }).toPass({ timeout: 15_000, intervals: [250, 500, 1_000] });
}

test('without JavaScript every form posts, redirects back, and refusals say why', async ({ page }) => {
  test.setTimeout(60_000);
  const name = uniqueName('nojs');
  const dir = makeProjectDir(name);

  // Add project: back on `/` with the project listed.
  await page.goto('/');
  const home = page.url();
  await submitProject(page, dir);
  await page.waitForLoadState();
  await expectBackOn(page, home);
  await expect(projectLink(page, name)).toBeVisible();

  // A refused post: a readable page with the status of the error, not JSON.
  await page.goto('/');
  const refused = page.waitForResponse((r) => r.request().method() === 'POST');
  await submitProject(page, dir);
  const duplicate = await refused;
  expect(duplicate.status()).toBe(409);
  await expectRefusal(page, /already/);

  // New session, rename, on the sessions page.
  await page.goto('/');
  await projectLink(page, name).click();
  await expect(page).toHaveURL(SESSIONS_PATH);
  const listUrl = page.url();
  const sessionName = uniqueName('session');
  await createSession(page, sessionName);
  await expectBackOn(page, listUrl);
  const renamed = `${sessionName}-renamed`;
  await renameSession(page, sessionName, renamed);
  await expect(sessionLink(page, renamed)).toBeVisible();

  // Send a message: back on the session page; the answer is there on reload.
  await sessionLink(page, renamed).click();
  await expect(page).toHaveURL(SESSION_PATH);
  const sessionUrl = page.url();
  await send(page, 'echo hello-without-js');
  await expectBackOn(page, sessionUrl);
  await reloadUntil(page, async () => {
    await expect(messageItem(page, 'echo hello-without-js')).toContainText(/succeeded/, QUICK);
    await expect(messageItem(page, 'hello-without-js')).toBeVisible(QUICK);
  });

  // Sending while a run is going is refused with 409, and says so.
  await send(page, 'sleep 3');
  await page.goto(sessionUrl);
  const busy = page.waitForResponse((r) => r.request().method() === 'POST');
  await send(page, 'echo too soon');
  expect((await busy).status()).toBe(409);
  await expectRefusal(page, /busy/);

  // Delete: back on the list, without the session.
  await page.goto(listUrl);
  await deleteSession(page, renamed);
  await expectBackOn(page, listUrl);
  await expect(sessionLink(page, renamed)).toHaveCount(0);
});
