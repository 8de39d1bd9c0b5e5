import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Locator, Page } from '@playwright/test';
import { expect, gotoHydrated, test, uniqueName, waitForHydration, withOneDatabase } from './fixtures';
import {
  QUICK,
  SESSION_PATH,
  apiSessionDetail,
  collectPageErrors,
  createSession,
  errorBadge,
  expectErrorBadge,
  expectNoBadge,
  hoverErrorBadge,
  messageInput,
  messageItem,
  messagesList,
  openNewProject,
  processingBadge,
  reloadHydrated,
  reloadUntil,
  send,
  sessionItem,
  sessionLink,
  statusRegion,
} from './helpers';

// Agent runs: sending messages to a shell session, the state badge
// (Processing / Error with its tooltip), busy and empty-message errors,
// cancelling, persistence across restarts, and the cross-origin guard.
//
// Every test makes its own project (a fresh temp directory with a unique
// name) and session. There are no live updates yet: after Send or Cancel the
// session page re-fetches its data once, so anything later (a run finishing)
// is only seen after a reload; `reloadUntil` polls with reloads.

// ---------- actions ----------

interface OpenSession {
  projectName: string;
  /** The project directory, where the shell runs its commands. */
  dir: string;
  sessionName: string;
  sessionId: string;
  /** `/projects/{pid}/sessions` */
  listPath: string;
  /** `/projects/{pid}/sessions/{sid}` */
  sessionPath: string;
}

/**
 * Adds a new project (to the server at `baseUrl`, or the worker's server),
 * creates a shell session in it — checking the list shows it without a
 * badge — and opens the session page, hydrated.
 */
async function openNewSession(page: Page, prefix: string, baseUrl = ''): Promise<OpenSession> {
  const { name: projectName, dir, listPath } = await openNewProject(page, prefix, baseUrl, {
    checkHeading: false,
  });
  const sessionName = uniqueName('session');

  await createSession(page, sessionName);
  await expectNoBadge(sessionItem(page, sessionName));

  const link = sessionLink(page, sessionName);
  const href = await link.getAttribute('href');
  expect(href, 'session link href').toMatch(SESSION_PATH);
  expect(href!.startsWith(`${listPath}/`), `${href} is not under ${listPath}`).toBe(true);
  const sessionPath = new URL(href!, page.url()).pathname;
  const sessionId = decodeURIComponent(sessionPath.slice(listPath.length + 1));

  await link.click();
  await expect(page).toHaveURL(SESSION_PATH);
  expect(new URL(page.url()).pathname).toBe(sessionPath);
  await waitForHydration(page);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText(sessionName);
  await expectNoBadge(statusRegion(page));

  return { projectName, dir, sessionName, sessionId, listPath, sessionPath };
}

/**
 * Sends `message` and waits until the server accepted it: the form is reset
 * and the island's re-fetch shows the message. (Reloading before that could
 * abort the request.)
 */
async function sendAccepted(page: Page, message: string) {
  await send(page, message);
  await expect(messageInput(page)).toHaveValue('');
  await expect(messageItem(page, message)).toHaveCount(1);
  await expect(page.getByRole('alert')).toHaveCount(0);
}

/** Sends a message that starts a run and waits for the "Processing" badge. */
async function sendAndExpectProcessing(page: Page, message: string) {
  await sendAccepted(page, message);
  await expect(processingBadge(statusRegion(page))).toContainText('Processing');
}

/** Presses Tab until `target` has the keyboard focus. */
async function tabTo(page: Page, target: Locator, maxPresses = 40) {
  for (let i = 0; i < maxPresses; i++) {
    await page.keyboard.press('Tab');
    if (await target.evaluate((el) => el === document.activeElement)) return;
  }
  throw new Error(`Tab did not reach the element within ${maxPresses} presses`);
}

// ---------- tests ----------

test.describe('agent runs', () => {
  test('seed steps 3–8: Processing while running, Error with tooltip, then idle again', async ({
    page,
    context,
  }) => {
    test.setTimeout(120_000);
    const problems = collectPageErrors(page);
    const s = await openNewSession(page, 'seed');
    const status = statusRegion(page);

    // The sessions list, in a second tab.
    const listPage = await context.newPage();
    const listProblems = collectPageErrors(listPage);
    try {
      await gotoHydrated(listPage, s.listPath);
      const listItem = sessionItem(listPage, s.sessionName);
      await expect(listItem).toHaveCount(1);
      await expectNoBadge(listItem);

      // A run in progress: "Processing" on the session page and in the list.
      await sendAndExpectProcessing(page, 'sleep 3');
      await expect(processingBadge(status)).toHaveAttribute('role', 'status');
      await expect(processingBadge(status).locator('.spinner')).toHaveCount(1);
      await expect(errorBadge(status)).toHaveCount(0);

      await listPage.reload();
      await expect(processingBadge(listItem)).toContainText('Processing');
      await waitForHydration(listPage);

      // When the run is over, the badge is gone on both pages.
      await reloadUntil(page, async () => {
        await expectNoBadge(status, QUICK);
        await expect(messageItem(page, 'sleep 3')).toContainText(/succeeded · \d/, QUICK);
      });
      await expect(status.getByRole('button', { name: 'Cancel', exact: true })).toHaveCount(0);
      await reloadUntil(listPage, async () => {
        await expect(listItem).toHaveCount(1, QUICK);
        await expectNoBadge(listItem, QUICK);
      });

      // A failing run: the Error badge with the message in a tooltip.
      await sendAccepted(page, 'echo boom >&2; exit 3');
      await reloadUntil(page, async () => {
        await expectErrorBadge(status, QUICK);
      });
      await expect(messageItem(page, 'echo boom >&2; exit 3')).toContainText(/failed/);

      // Hover shows the tooltip; moving away hides it again.
      const tip = await hoverErrorBadge(page, status);
      await expect(tip).toHaveText('exited with status 3: boom');
      await page.mouse.move(0, 0);
      await expect(tip).toBeHidden();

      // Keyboard focus shows it too.
      const badge = errorBadge(status);
      await tabTo(page, badge);
      await expect(badge).toBeFocused();
      await expect(tip).toBeVisible();
      await expect(tip).toHaveText('exited with status 3: boom');

      // The list shows the error as well.
      await reloadUntil(listPage, async () => {
        await expectErrorBadge(listItem, QUICK);
      });
      const listTip = await hoverErrorBadge(listPage, listItem);
      await expect(listTip).toHaveText('exited with status 3: boom');

      // The next message clears the error: Processing, then nothing.
      await sendAndExpectProcessing(page, 'sleep 2');
      await expect(errorBadge(status)).toHaveCount(0);
      await reloadUntil(page, async () => {
        await expectNoBadge(status, QUICK);
        await expect(messageItem(page, 'sleep 2')).toContainText(/succeeded · \d/, QUICK);
      });
      await reloadUntil(listPage, async () => {
        await expectNoBadge(listItem, QUICK);
      });

      // The whole conversation is kept, oldest first.
      await expect(messageItem(page, 'sleep 3')).toContainText(/succeeded/);
      await expect(messageItem(page, 'echo boom >&2; exit 3')).toContainText(/failed/);
    } finally {
      await listPage.close();
    }

    expect(problems, 'page errors on the session page').toEqual([]);
    expect(listProblems, 'page errors on the sessions page').toEqual([]);
  });

  test('sending while busy is refused without losing the text; Cancel stops the run', async ({
    page,
  }) => {
    test.setTimeout(60_000);
    await openNewSession(page, 'busy');
    const status = statusRegion(page);

    await sendAndExpectProcessing(page, 'sleep 5');

    await send(page, 'echo second');
    await expect(page.getByRole('alert')).toContainText('session is busy');
    await expect(messageInput(page)).toHaveValue('echo second');
    await expect(processingBadge(status)).toContainText('Processing');

    // Cancel: the island re-fetches, so the badge goes without a reload.
    const cancel = status.getByRole('button', { name: 'Cancel', exact: true });
    await expect(cancel).toBeVisible();
    await cancel.click();
    await expectNoBadge(status);
    await expect(cancel).toHaveCount(0);
    // The refused text is still there to send again.
    await expect(messageInput(page)).toHaveValue('echo second');

    await reloadUntil(page, async () => {
      await expect(messageItem(page, 'sleep 5')).toContainText(/cancelled/, QUICK);
    });
    await expectNoBadge(status);
    // The refused message was never added to the conversation.
    await expect(messageItem(page, 'echo second')).toHaveCount(0);
  });

  test('a whitespace-only message is refused', async ({ page }) => {
    await openNewSession(page, 'empty');

    await send(page, '   ');
    await expect(page.getByRole('alert')).toContainText('Message is empty');
    await expectNoBadge(statusRegion(page));

    await reloadHydrated(page);
    await expectNoBadge(statusRegion(page));
    await expect(messagesList(page).getByRole('listitem')).toHaveCount(0);
  });

  test('an error message with HTML shows as plain text in the tooltip', async ({ page }) => {
    await openNewSession(page, 'html');
    const status = statusRegion(page);
    const command = "echo '<b>bold</b>' >&2; exit 1";

    await sendAccepted(page, command);
    await reloadUntil(page, async () => {
      await expectErrorBadge(status, QUICK);
    });

    const tip = await hoverErrorBadge(page, status);
    await expect(tip).toContainText('<b>bold</b>');
    await expect(tip).toContainText('exited with status 1');
    await expect(tip.locator('b')).toHaveCount(0);

    // The command itself is shown literally too.
    await expect(messageItem(page, command)).toHaveCount(1);
    await expect(messagesList(page).locator('b')).toHaveCount(0);
  });

  test('a cross-origin write is refused with 403', async ({ page, server }) => {
    const s = await openNewSession(page, 'csrf');
    const messagesUrl = `/api/sessions/${encodeURIComponent(s.sessionId)}/messages`;

    const refused = await page.request.post(messagesUrl, {
      headers: { Origin: 'http://evil.example', 'Content-Type': 'application/json' },
      data: { message: 'touch pwned' },
    });
    expect(refused.status()).toBe(403);

    // The same request from the server's own origin is accepted and runs in
    // the project directory, so the refusal above is what kept `pwned` away.
    const accepted = await page.request.post(messagesUrl, {
      headers: { Origin: server.url, 'Content-Type': 'application/json' },
      data: { message: 'touch ok' },
    });
    expect(accepted.status()).toBe(202);
    await expect
      .poll(() => fs.existsSync(path.join(s.dir, 'ok')), { timeout: 15_000 })
      .toBe(true);

    expect(fs.existsSync(path.join(s.dir, 'pwned')), 'the refused command ran').toBe(false);
    const detail = await apiSessionDetail(page.request, s.sessionId);
    const contents: string[] = detail.messages.map((m: { content: string }) => m.content);
    expect(contents).toContain('touch ok');
    expect(contents).not.toContain('touch pwned');
  });
});

test('a session error survives a server restart', async ({ page }) => {
  test.setTimeout(120_000);
  await withOneDatabase(async (start) => {
    const first = await start();
    const s = await openNewSession(page, 'restart', first.url);
    const status = statusRegion(page);

    await sendAccepted(page, 'exit 7');
    await reloadUntil(page, async () => {
      await expectErrorBadge(status, QUICK);
    });
    const before = await hoverErrorBadge(page, status);
    await expect(before).toContainText('exited with status 7');
    await page.mouse.move(0, 0);

    await first.stop();
    const second = await start();

    const res = await gotoHydrated(page, `${second.url}${s.sessionPath}`);
    expect(res?.status()).toBe(200);
    await expect(page.getByRole('heading', { level: 1 })).toHaveText(s.sessionName);
    await expectErrorBadge(status);
    const after = await hoverErrorBadge(page, status);
    await expect(after).toContainText('exited with status 7');
    await expect(messageItem(page, 'exit 7')).toContainText(/failed/);

    // The sessions list agrees.
    await gotoHydrated(page, `${second.url}${s.listPath}`);
    await expectErrorBadge(sessionItem(page, s.sessionName));
  });
});
