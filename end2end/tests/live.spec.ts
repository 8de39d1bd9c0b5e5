import type { Locator, Page } from '@playwright/test';
import { expect, gotoHydrated, test, uniqueName, withOneDatabase } from './fixtures';
import {
  SESSION_PATH,
  apiCreateSession,
  apiSend,
  apiSession,
  collectPageErrors,
  createSession,
  deleteSession,
  errorBadge,
  expectErrorBadge,
  expectNoBadge,
  expectSamePage,
  hoverErrorBadge,
  liveIndicator,
  markPage,
  messageInput,
  messageItem,
  openNewProject,
  processingBadge,
  renameSession,
  send,
  sessionItem,
  sessionLink,
  sessionsList,
  statusRegion,
  waitForState,
} from './helpers';

// Live updates: every hydrated page follows the change stream
// (`/api/events`), so badges, lists, counts, the title, the timeline and the
// live output change by themselves — in every open tab, without reloads, and
// after the connection drops (server restart, network loss).
//
// Every test makes its own project (a fresh temp directory with a unique
// name). Changes are driven either from another page or through the JSON API
// (see helpers.ts) while the pages under test are only watched;
// `markPage`/`expectSamePage` check that they were never reloaded.

/** How long a page may take to catch up after a drop (backoff + replay). */
const CATCH_UP = { timeout: 15_000 };
/** A run's end, seen live (commands here take at most a few seconds). */
const RUN_END = { timeout: 15_000 };

/** "working", "working 850 ms", "working 3.1 s", "working 1m 12s". */
const ELAPSED = /^working( \d+(\.\d)? s| \d+ ms| \d+m \d+s)?$/;
/** A duration as the timeline shows it after "worked ". */
const DURATION = String.raw`(\d+ ms|\d+(\.\d)? s|\d+m \d+s|\d+h \d+m)`;

// ---------- locators ----------

function elapsed(scope: Locator): Locator {
  return scope.locator('.elapsed');
}

function timelineEntries(page: Page): Locator {
  return page.getByRole('list', { name: 'Timeline', exact: true }).locator('.timeline-entry');
}

function liveOutput(page: Page): Locator {
  return page.locator('pre.live-output[aria-label="Live output"]');
}

function filterNav(page: Page): Locator {
  return page.getByRole('navigation', { name: 'Filter by state', exact: true });
}

type FilterLabel = 'All' | 'Idle' | 'Working' | 'Error';

/** The filter link "All N" / "Idle N" / …, whatever its count. */
function filterLink(page: Page, label: FilterLabel): Locator {
  return filterNav(page).getByRole('link', { name: new RegExp(`^\\s*${label}\\b`) });
}

// ---------- page actions and checks ----------

/** The session page path a list page links `name` to. */
async function sessionHref(page: Page, name: string): Promise<string> {
  const href = await sessionLink(page, name).getAttribute('href');
  expect(href, 'session link href').toMatch(SESSION_PATH);
  return new URL(href!, page.url()).pathname;
}

/** Waits until the page's stream is connected. */
async function waitLive(page: Page) {
  const indicator = liveIndicator(page);
  await expect(indicator).toHaveAttribute('aria-live', 'polite');
  await expect(indicator).toHaveText('Live', CATCH_UP);
}

async function expectProcessing(scope: Locator, options?: { timeout?: number }) {
  await expect(processingBadge(scope)).toContainText('Processing', options);
  await expect(errorBadge(scope)).toHaveCount(0, options);
}

/** Checks the filter links' counts ("All N", "Idle N", …). */
async function expectCounts(
  page: Page,
  counts: { all: number; idle: number; working: number; error: number },
  options?: { timeout?: number },
) {
  const expected: [FilterLabel, number][] = [
    ['All', counts.all],
    ['Idle', counts.idle],
    ['Working', counts.working],
    ['Error', counts.error],
  ];
  for (const [label, n] of expected) {
    const link = filterLink(page, label);
    await expect(link.locator('.count')).toHaveText(String(n), options);
    await expect(link).toHaveText(new RegExp(`^\\s*${label}\\s*${n}\\s*$`), options);
  }
}

/**
 * Holds the answer to the page's first call of the server function `path`
 * (the server has already read its snapshot) until `release()`; later calls
 * pass straight through. `delivered` resolves once the held answer is given.
 */
async function holdFirstAnswer(page: Page, path: string) {
  let release!: () => void;
  let delivered!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const deliveredPromise = new Promise<void>((resolve) => (delivered = resolve));
  let calls = 0;
  await page.route(`**${path}`, async (route) => {
    calls += 1;
    const response = await route.fetch();
    if (calls === 1) {
      await released;
      await route.fulfill({ response });
      delivered();
    } else {
      await route.fulfill({ response });
    }
  });
  return { release, delivered: deliveredPromise, calls: () => calls };
}

// ---------- tests ----------

test.describe('live updates', () => {
  test('seed steps 3–8 happen live on the list and the session page, without reloads', async ({
    page,
    context,
  }) => {
    test.setTimeout(120_000);
    const listPage = page;
    const listProblems = collectPageErrors(listPage);
    const p = await openNewProject(listPage, 'live-seed');
    await waitLive(listPage);
    await markPage(listPage);

    // Step 3: a new session, idle (no badge).
    const sessionName = uniqueName('session');
    await createSession(listPage, sessionName);
    const item = sessionItem(listPage, sessionName);
    await expect(item).toHaveCount(1);
    await expectNoBadge(item);
    await expect(elapsed(item)).toHaveCount(0);
    const sessionPath = await sessionHref(listPage, sessionName);
    expect(sessionPath.startsWith(`${p.listPath}/`)).toBe(true);

    const sessionPage = await context.newPage();
    const sessionProblems = collectPageErrors(sessionPage);
    try {
      await gotoHydrated(sessionPage, sessionPath);
      await expect(sessionPage.getByRole('heading', { level: 1 })).toHaveText(sessionName);
      await waitLive(sessionPage);
      await markPage(sessionPage);
      const status = statusRegion(sessionPage);
      await expectNoBadge(status);

      // Steps 4–5: a run — "Processing" on both pages, with the elapsed time.
      await send(sessionPage, 'sleep 3');
      // Checked together: the run only lasts 2 s.
      await Promise.all([
        expectProcessing(status),
        expectProcessing(item),
        expect(elapsed(item)).toHaveText(ELAPSED),
      ]);
      await expect(messageInput(sessionPage)).toHaveValue('');

      // Step 6: the run ends — the badge goes on both pages.
      await expectNoBadge(status, RUN_END);
      await expectNoBadge(item, RUN_END);
      await expect(elapsed(item)).toHaveCount(0);
      await expect(messageItem(sessionPage, 'sleep 3')).toContainText(/succeeded/, RUN_END);

      // Step 7: a failing run — "Error" on both, the message in its tooltip.
      await send(sessionPage, 'echo boom >&2; exit 3');
      await expectErrorBadge(status, RUN_END);
      await expectErrorBadge(item, RUN_END);
      const listTip = await hoverErrorBadge(listPage, item);
      await expect(listTip).toHaveText('exited with status 3: boom');
      await listPage.mouse.move(0, 0);
      const sessionTip = await hoverErrorBadge(sessionPage, status);
      await expect(sessionTip).toHaveText('exited with status 3: boom');
      await sessionPage.mouse.move(0, 0);

      // Step 8: the next message clears the error: Processing, then nothing.
      await send(sessionPage, 'sleep 2');
      await Promise.all([expectProcessing(status), expectProcessing(item)]);
      await expectNoBadge(status, RUN_END);
      await expectNoBadge(item, RUN_END);

      // The timeline lists each state change in order, with how long runs took.
      const entries = timelineEntries(sessionPage);
      await expect(entries).toHaveText(
        [
          /\bsent\b.*idle → working/,
          /\bsucceeded\b.*working → idle/,
          /\bsent\b.*idle → working/,
          /\bfailed\b.*working → error/,
          /\bsent\b.*error → working/,
          /\bsucceeded\b.*working → idle/,
        ],
        RUN_END,
      );
      const worked = new RegExp(`worked ${DURATION}`);
      await expect(entries.nth(1)).toContainText(worked);
      await expect(entries.nth(3)).toContainText(worked);
      await expect(entries.nth(3)).toContainText('exited with status 3: boom');
      await expect(entries.nth(5)).toContainText(worked);
      await expect(entries.nth(0)).not.toContainText('worked ');

      await expect(messageItem(sessionPage, 'echo boom >&2; exit 3')).toContainText(/failed/);
      await expect(messageItem(sessionPage, 'sleep 2')).toContainText(/succeeded/);

      await expectSamePage(listPage);
      await expectSamePage(sessionPage);
      await expect(liveIndicator(listPage)).toHaveText('Live');
      await expect(liveIndicator(sessionPage)).toHaveText('Live');
    } finally {
      await sessionPage.close();
    }

    expect(listProblems, 'page errors on the sessions page').toEqual([]);
    expect(sessionProblems, 'page errors on the session page').toEqual([]);
  });

  test('sessions created, renamed and deleted in one tab change in another', async ({
    page,
    context,
  }) => {
    test.setTimeout(60_000);
    const a = page;
    const p = await openNewProject(a, 'live-tabs');
    const b = await context.newPage();
    const problems = collectPageErrors(b);
    try {
      await gotoHydrated(b, p.listPath);
      await waitLive(a);
      await waitLive(b);
      await markPage(b);
      await expect(sessionsList(b).getByRole('listitem')).toHaveCount(0);

      // Created in A → listed in B, idle.
      await createSession(a, 'alpha');
      await expect(sessionLink(b, 'alpha')).toBeVisible();
      await expectNoBadge(sessionItem(b, 'alpha'));
      await createSession(a, 'beta');
      await expect(sessionsList(b).getByRole('link')).toHaveText(['beta', 'alpha']);

      // Renamed in A → the new name in B.
      await renameSession(a, 'alpha', 'gamma');
      await expect(sessionLink(a, 'gamma')).toBeVisible();
      await expect(sessionLink(b, 'gamma')).toBeVisible();
      await expect(sessionLink(b, 'alpha')).toHaveCount(0);
      await expect(sessionsList(b).getByRole('listitem')).toHaveCount(2);

      // Deleted in A → gone from B.
      await deleteSession(a, 'beta');
      await expect(sessionLink(a, 'beta')).toHaveCount(0);
      await expect(sessionLink(b, 'beta')).toHaveCount(0);
      await expect(sessionsList(b).getByRole('link')).toHaveText(['gamma']);

      // Counts follow too.
      await expectCounts(b, { all: 1, idle: 1, working: 0, error: 0 });
      await expectSamePage(b);
    } finally {
      await b.close();
    }
    expect(problems, 'page errors on the watching tab').toEqual([]);
  });

  test('an open page reconnects after a server restart and catches up', async ({ page, request }) => {
    test.setTimeout(120_000);
    await withOneDatabase(async (start) => {
      const first = await start();
      const port = Number(new URL(first.url).port);
      expect(port).toBeGreaterThan(0);

      const p = await openNewProject(page, 'live-restart', first.url);
      const sessionName = uniqueName('session');
      await createSession(page, sessionName);
      const sessionPath = await sessionHref(page, sessionName);
      const sessionId = decodeURIComponent(sessionPath.slice(p.listPath.length + 1));
      const item = sessionItem(page, sessionName);
      await waitLive(page);
      await markPage(page);

      await first.stop();
      await expect(liveIndicator(page)).toHaveText('Reconnecting…', CATCH_UP);

      const second = await start({ port });
      expect(second.url).toBe(first.url);
      await apiSend(request, sessionId, 'exit 4', second.url);
      await waitForState(request, sessionId, 'error', second.url);

      // The page, never reloaded, reconnects by itself and shows the change.
      await expect(liveIndicator(page)).toHaveText('Live', CATCH_UP);
      await expectErrorBadge(item, CATCH_UP);
      const tip = await hoverErrorBadge(page, item);
      await expect(tip).toContainText('exited with status 4');
      await expectCounts(page, { all: 1, idle: 0, working: 0, error: 1 });
      await expectSamePage(page);
    });
  });

  test('a page that was offline catches up when the network is back', async ({
    page,
    context,
    request,
  }) => {
    test.setTimeout(90_000);
    const p = await openNewProject(page, 'live-offline');
    const session = await apiCreateSession(request, p.projectId, uniqueName('session'));
    const item = sessionItem(page, session.name);
    await expect(item).toHaveCount(1);
    await waitLive(page);
    await markPage(page);

    await context.setOffline(true);
    try {
      // The API request context is not affected by the page's network.
      await apiSend(request, session.id, 'exit 5');
      await waitForState(request, session.id, 'error');
    } finally {
      await context.setOffline(false);
    }

    await expectErrorBadge(item, CATCH_UP);
    await expect(liveIndicator(page)).toHaveText('Live', CATCH_UP);
    const tip = await hoverErrorBadge(page, item);
    await expect(tip).toContainText('exited with status 5');
    await expectCounts(page, { all: 1, idle: 0, working: 0, error: 1 });
    await expectSamePage(page);
  });

  test('the state filter and its counts follow changes live', async ({ page, context, request }) => {
    test.setTimeout(120_000);
    const all = page;
    const p = await openNewProject(all, 'live-filter');
    const s1 = await apiCreateSession(request, p.projectId, uniqueName('one'));
    const s2 = await apiCreateSession(request, p.projectId, uniqueName('two'));
    const s3 = await apiCreateSession(request, p.projectId, uniqueName('three'));
    await expect(sessionsList(all).getByRole('listitem')).toHaveCount(3);
    await waitLive(all);
    await markPage(all);

    // The links and the counts.
    await expectCounts(all, { all: 3, idle: 3, working: 0, error: 0 });
    await expect(filterLink(all, 'All')).toHaveAttribute('aria-current', 'page');
    for (const label of ['Idle', 'Working', 'Error'] as const) {
      await expect(filterLink(all, label)).toHaveAttribute(
        'href',
        new RegExp(`/projects/${p.projectId}/sessions\\?state=${label.toLowerCase()}$`),
      );
      await expect(filterLink(all, label)).not.toHaveAttribute('aria-current', 'page');
    }

    // One starts working: counts change live, its elapsed time ticks.
    await apiSend(request, s1.id, 'sleep 6');
    await expectCounts(all, { all: 3, idle: 2, working: 1, error: 0 });
    const item1 = sessionItem(all, s1.name);
    await expectProcessing(item1);
    const ticking = elapsed(item1);
    await expect(ticking).toHaveText(ELAPSED);
    await expect(ticking).toHaveText(/^working \d/);
    const firstText = (await ticking.textContent())!.trim();

    const working = await context.newPage();
    const errors = await context.newPage();
    const problems = [...collectPageErrors(working), ...collectPageErrors(errors)];
    try {
      // The working filter lists only that session (server-rendered).
      const res = await gotoHydrated(working, `${p.listPath}?state=working`);
      expect(res?.status()).toBe(200);
      await expect(sessionsList(working).getByRole('listitem')).toHaveCount(1);
      await expect(sessionLink(working, s1.name)).toBeVisible();
      await expectProcessing(sessionItem(working, s1.name));
      await expect(filterLink(working, 'Working')).toHaveAttribute('aria-current', 'page');
      await expect(filterLink(working, 'All')).not.toHaveAttribute('aria-current', 'page');
      await expectCounts(working, { all: 3, idle: 2, working: 1, error: 0 });
      await waitLive(working);
      await markPage(working);

      // The elapsed time moved on while all this happened (it ticks each second).
      await expect
        .poll(
          async () => {
            const texts = await ticking.allTextContents();
            return texts.length === 1 && texts[0].trim() !== firstText && ELAPSED.test(texts[0].trim());
          },
          { timeout: 5_000, message: `elapsed time to change from "${firstText}"` },
        )
        .toBe(true);

      // The error filter, opened while nothing is in error.
      await gotoHydrated(errors, `${p.listPath}?state=error`);
      await expect(sessionsList(errors).getByRole('listitem')).toHaveCount(0);
      await expect(filterLink(errors, 'Error')).toHaveAttribute('aria-current', 'page');
      await waitLive(errors);
      await markPage(errors);

      // The run ends: the session leaves the working filter; counts update.
      await expect(sessionsList(working).getByRole('listitem')).toHaveCount(0, RUN_END);
      await expectCounts(working, { all: 3, idle: 3, working: 0, error: 0 });
      await expectCounts(all, { all: 3, idle: 3, working: 0, error: 0 });
      await expectNoBadge(item1);

      // Another fails: it enters the error filter opened beforehand.
      await apiSend(request, s2.id, 'exit 6');
      const errorItem = sessionItem(errors, s2.name);
      await expect(errorItem).toHaveCount(1, RUN_END);
      await expectErrorBadge(errorItem);
      await expect(sessionsList(errors).getByRole('listitem')).toHaveCount(1);
      await expect(sessionLink(errors, s3.name)).toHaveCount(0);
      const tip = await hoverErrorBadge(errors, errorItem);
      await expect(tip).toContainText('exited with status 6');
      await expectCounts(errors, { all: 3, idle: 2, working: 0, error: 1 });
      await expectCounts(all, { all: 3, idle: 2, working: 0, error: 1 });
      await expectCounts(working, { all: 3, idle: 2, working: 0, error: 1 });
      await expect(sessionsList(working).getByRole('listitem')).toHaveCount(0);
      await expectErrorBadge(sessionItem(all, s2.name));

      await expectSamePage(all);
      await expectSamePage(working);
      await expectSamePage(errors);
    } finally {
      await working.close();
      await errors.close();
    }
    expect(problems, 'page errors on the filtered pages').toEqual([]);
  });

  test('the tab title counts working and failed sessions live', async ({ page, request }) => {
    test.setTimeout(90_000);
    const p = await openNewProject(page, 'live-title');
    const plain = `${p.name} · agentdeck`;
    await expect(page).toHaveTitle(plain);
    const session = await apiCreateSession(request, p.projectId, uniqueName('session'));
    await expect(sessionItem(page, session.name)).toHaveCount(1);
    await waitLive(page);
    await markPage(page);

    await apiSend(request, session.id, 'sleep 3');
    await expect(page).toHaveTitle(`(1 working) ${plain}`);
    await expect(page).toHaveTitle(plain, RUN_END);
    await waitForState(request, session.id, 'idle');

    await apiSend(request, session.id, 'echo nope >&2; exit 2');
    await expect(page).toHaveTitle(`(1 error) ${plain}`, RUN_END);

    // A successful retry: working again, then no prefix at all.
    await apiSend(request, session.id, 'sleep 2');
    await expect(page).toHaveTitle(`(1 working) ${plain}`);
    await expect(page).toHaveTitle(plain, RUN_END);
    await expectSamePage(page);
  });

  test('the session page shows live output while the run is going', async ({ page, request }) => {
    test.setTimeout(60_000);
    const p = await openNewProject(page, 'live-output');
    const sessionName = uniqueName('session');
    await createSession(page, sessionName);
    const sessionPath = await sessionHref(page, sessionName);
    await gotoHydrated(page, sessionPath);
    await waitLive(page);
    await markPage(page);
    const status = statusRegion(page);
    const command = 'echo first; sleep 3; echo second';

    await send(page, command);
    await expectProcessing(status);
    await expect(elapsed(status)).toHaveText(ELAPSED);
    const output = liveOutput(page);
    await expect(output).toContainText('first');

    // "first" is there before the run ends: a single snapshot of the page.
    const snapshot = await page.evaluate(() => {
      const pre = document.querySelector('pre.live-output');
      const region = document.querySelector('section[aria-label="Status"]');
      return {
        output: pre?.textContent ?? '',
        processing: !!region?.querySelector('[role="status"]'),
      };
    });
    expect(snapshot.processing, 'the run was still going when "first" showed').toBe(true);
    expect(snapshot.output).toContain('first');
    expect(snapshot.output).not.toContain('second');

    await expectNoBadge(status, RUN_END);
    await expect(messageItem(page, command)).toContainText(/succeeded/, RUN_END);
    const detail = await apiSession(request, decodeURIComponent(sessionPath.slice(p.listPath.length + 1)));
    expect(detail.state).toBe('idle');
    await expectSamePage(page);
  });

  test('a list snapshot read before later changes does not undo them', async ({ page, request }) => {
    test.setTimeout(60_000);
    const p = await openNewProject(page, 'live-stale-list');
    const s = await apiCreateSession(request, p.projectId, uniqueName('racer'));
    const held = await holdFirstAnswer(page, '/rpc/project_sessions');
    await gotoHydrated(page, `${p.listPath}?state=working`);
    await waitLive(page);
    await markPage(page);

    // The run enters the "working" filter: the page asks for the list, and
    // the answer (the session working) is held until the run has failed.
    await apiSend(request, s.id, 'sleep 1; exit 6');
    await expect.poll(held.calls).toBe(1);
    await waitForState(request, s.id, 'error');
    await expectCounts(page, { all: 1, idle: 0, working: 0, error: 1 }, RUN_END);
    held.release();
    await held.delivered;

    // The late answer is older than what the page shows: it stays as it is.
    await page.waitForTimeout(1_000);
    await expectCounts(page, { all: 1, idle: 0, working: 0, error: 1 });
    await expect(sessionsList(page).getByRole('listitem')).toHaveCount(0);
    await expectSamePage(page);
  });

  test('a session snapshot read before later changes does not undo them', async ({ page, request }) => {
    test.setTimeout(60_000);
    const p = await openNewProject(page, 'live-stale-session');
    const s = await apiCreateSession(request, p.projectId, uniqueName('racer'));
    const held = await holdFirstAnswer(page, '/rpc/load_conversation');
    await gotoHydrated(page, `${p.listPath}/${s.id}`);
    await waitLive(page);
    await markPage(page);
    const status = statusRegion(page);

    // "sent" makes the page reload the conversation; that answer (working)
    // is held until the run has failed and the page shows it.
    await apiSend(request, s.id, 'sleep 1; exit 6');
    await expect.poll(held.calls).toBeGreaterThanOrEqual(1);
    await expectErrorBadge(status, RUN_END);
    await expect(messageItem(page, 'sleep 1; exit 6')).toContainText(/failed/, RUN_END);
    held.release();
    await held.delivered;

    await page.waitForTimeout(1_000);
    await expectErrorBadge(status);
    await expect(processingBadge(status)).toHaveCount(0);
    await expectSamePage(page);
  });

  test('a run that ends shows a browser notification', async ({ page }) => {
    test.setTimeout(60_000);
    // Headless Chromium may not support notification permission, so the
    // Notification API is replaced by a recorder: permission starts at
    // "default" and becomes "granted" when asked.
    await page.addInitScript(() => {
      const w = window as any;
      w.__notes = [];
      w.__permissionRequests = 0;
      class FakeNotification extends EventTarget {
        static permission: string = 'default';
        static requestPermission(callback?: (p: string) => void): Promise<string> {
          w.__permissionRequests += 1;
          FakeNotification.permission = 'granted';
          if (typeof callback === 'function') callback('granted');
          return Promise.resolve('granted');
        }
        title: string;
        body: string;
        tag: string;
        onclick: unknown = null;
        onshow: unknown = null;
        onerror: unknown = null;
        onclose: unknown = null;
        constructor(title: string, options?: { body?: string; tag?: string }) {
          super();
          this.title = String(title);
          this.body = options?.body ?? '';
          this.tag = options?.tag ?? '';
          w.__notes.push({ title: this.title, body: this.body, tag: this.tag });
        }
        close() {}
      }
      Object.defineProperty(window, 'Notification', {
        value: FakeNotification,
        writable: true,
        configurable: true,
      });
    });

    await openNewProject(page, 'live-notify');
    const sessionName = uniqueName('session');
    await createSession(page, sessionName);
    await gotoHydrated(page, await sessionHref(page, sessionName));
    await waitLive(page);

    const ask = page.getByRole('button', { name: 'Notify me when runs end', exact: true });
    const on = page.getByText('Notifications on', { exact: true });
    await expect(ask.or(on)).toBeVisible();
    if (await ask.isVisible()) await ask.click();
    await expect(on).toBeVisible();
    await expect(ask).toHaveCount(0);
    expect(await page.evaluate(() => (window as any).__permissionRequests)).toBeGreaterThan(0);

    await send(page, 'exit 9');
    await expectErrorBadge(statusRegion(page), RUN_END);
    await expect
      .poll(() => page.evaluate(() => (window as any).__notes as { title: string; body: string }[]), {
        timeout: 10_000,
        message: 'a notification for the failed run',
      })
      .toContainEqual(
        expect.objectContaining({
          title: `${sessionName} failed`,
          body: expect.stringContaining('exited with status 9'),
        }),
      );
    const notes: { title: string }[] = await page.evaluate(() => (window as any).__notes);
    expect(notes.filter((n) => n.title === `${sessionName} failed`)).toHaveLength(1);
  });
});
