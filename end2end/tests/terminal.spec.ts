import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { APIRequestContext, Locator, Page } from '@playwright/test';
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
  type StartOptions,
} from './fixtures';
import {
  apiCreateSession,
  apiSend,
  apiSessionDetail,
  collectPageErrors,
  errorBadge,
  expectErrorBadge,
  expectNoBadge,
  expectSamePage,
  hoverErrorBadge,
  liveIndicator,
  markPage,
  messageItem,
  openNewProject,
  processingBadge,
  projectsList,
  sessionItem,
  sessionLink,
  statusRegion,
  waitForState,
} from './helpers';

// Terminal sessions: Claude Code (or Codex) running in a person's terminal
// reports each turn through hooks (`POST /api/hooks/claude`). Here the test
// plays the agent: it posts the hook bodies Claude Code sends, and watches
// the project page, the projects page (counts and "Active sessions") and the
// session page follow them live, without reloads.
//
// Tests that assert on everything the projects page lists start their own
// server; the others make their own project on the worker's server.

/** A state change seen live (hooks apply at once; runs here last seconds). */
const LIVE = { timeout: 15_000 };

/** The failure Claude Code reports for an overloaded API, and the message agentdeck makes of it. */
const OVERLOADED = { error: 'server_error', last_assistant_message: 'API Error: 529 Overloaded.' };
const OVERLOADED_MESSAGE = 'Claude Code API error (server_error): API Error: 529 Overloaded.';

// ---------- hooks ----------

interface HookAnswer {
  outcome: 'applied' | 'unchanged' | 'no_project' | 'ignored' | 'own_run';
  session_id: string | null;
}

/** Posts one hook body as Claude Code's (or Codex's) hook would; returns the status and answer. */
async function postHook(
  request: APIRequestContext,
  body: Record<string, unknown>,
  { baseUrl = '', agent = 'claude' }: { baseUrl?: string; agent?: 'claude' | 'codex' } = {},
): Promise<{ status: number; answer: HookAnswer }> {
  const res = await request.post(`${baseUrl}/api/hooks/${agent}`, {
    headers: { 'Content-Type': 'application/json' },
    data: body,
  });
  const text = await res.text();
  let answer: HookAnswer;
  try {
    answer = JSON.parse(text);
  } catch {
    throw new Error(`POST /api/hooks/${agent} answered ${res.status()} with no JSON: ${text}`);
  }
  return { status: res.status(), answer };
}

/**
 * One Claude Code session in a terminal, running in `cwd`: `hook(event,
 * fields)` posts that event's body (with the fields every event carries) and
 * expects it to reach the session (200); `sessionId` is agentdeck's id for
 * it, known after the first hook.
 */
function terminalAgent(request: APIRequestContext, cwd: string, baseUrl = '') {
  const externalId = randomUUID();
  const agent = {
    externalId,
    sessionId: '',
    async hook(event: string, fields: Record<string, unknown> = {}, outcome?: HookAnswer['outcome']) {
      const body = {
        session_id: externalId,
        transcript_path: `/home/me/.claude/projects/e2e/${externalId}.jsonl`,
        cwd,
        permission_mode: 'default',
        hook_event_name: event,
        ...fields,
      };
      const { status, answer } = await postHook(request, body, { baseUrl });
      expect(status, `${event}: ${JSON.stringify(answer)}`).toBe(200);
      expect(['applied', 'unchanged'], `${event}: outcome`).toContain(answer.outcome);
      if (outcome) expect(answer.outcome, `${event}: outcome`).toBe(outcome);
      expect(typeof answer.session_id, `${event}: session_id`).toBe('string');
      if (agent.sessionId) expect(answer.session_id, `${event}: the same session`).toBe(agent.sessionId);
      agent.sessionId = answer.session_id!;
      return answer;
    },
  };
  return agent;
}

// ---------- locators ----------

function liveOutput(page: Page): Locator {
  return page.locator('pre[aria-label="Live output"]');
}

/** "Needs approval" / "Needs input" beside the badge in `scope`. */
function attention(scope: Locator, kind?: 'approval' | 'input'): Locator {
  return scope.locator(kind ? `.attention[data-attention="${kind}"]` : '.attention');
}

/** "working 3s", "failed 2m ago": how long the session has been in its state. */
function since(scope: Locator): Locator {
  return scope.locator('.since');
}

function activeList(page: Page): Locator {
  return page.getByRole('list', { name: 'Active sessions', exact: true });
}

function activeRows(page: Page): Locator {
  return activeList(page).getByRole('listitem');
}

function activeRow(page: Page, sessionName: string): Locator {
  return activeRows(page).filter({ has: page.getByRole('link', { name: sessionName, exact: true }) });
}

type ActiveFilterLabel = 'All' | 'Working' | 'Failed' | 'Needs you';

/** A filter of the "Active sessions" list: a link or a button, maybe with a count after its label. */
function activeFilter(page: Page, label: ActiveFilterLabel): Locator {
  const nav = page.getByRole('navigation', { name: 'Filter active sessions', exact: true });
  const name = new RegExp(`^\\s*${label}\\b`);
  return nav.getByRole('link', { name }).or(nav.getByRole('button', { name }));
}

/** A project's item on the projects page. */
function projectItem(page: Page, projectName: string): Locator {
  return projectsList(page)
    .getByRole('listitem')
    .filter({ has: page.getByRole('link', { name: projectName, exact: true }) });
}

/** The live counts of a project item: "2 working", "1 error", "1 needs you" (non-zero ones only). */
function projectCounts(item: Locator): Locator {
  return item.locator('.project-counts .count');
}

// ---------- checks ----------

/** Waits until the page's change stream is connected, where the page shows it. */
async function waitLive(page: Page) {
  const indicator = liveIndicator(page);
  if ((await indicator.count()) === 0) return;
  await expect(indicator).toHaveText('Live', LIVE);
}

async function expectProcessing(scope: Locator, options?: { timeout?: number }) {
  await expect(processingBadge(scope)).toContainText('Processing', options);
  await expect(errorBadge(scope)).toHaveCount(0, options);
}

/** The "Active sessions" rows, in order, are exactly those of the sessions `names` (by their links). */
async function expectActive(page: Page, names: string[], options?: { timeout?: number }) {
  await expect
    .poll(
      () =>
        activeRows(page).evaluateAll((rows) =>
          rows.map((row) => Array.from(row.querySelectorAll('a'), (a) => (a.textContent ?? '').trim())),
        ),
      { message: `the active sessions to be ${names.join(', ')}`, ...options },
    )
    .toEqual(names.map((name) => expect.arrayContaining([name])));
}

/**
 * Clicks the overview's filter `label`. Once hydrated the page filters in
 * place: a reload is a (soft) failure, after which the test goes on on the
 * new page, so that what it checks next is still checked.
 */
/** The filters are links (they work without JavaScript too): choosing one loads the filtered page. */
async function chooseFilter(page: Page, label: ActiveFilterLabel) {
  await activeFilter(page, label).click();
  await expect(activeFilter(page, label)).toHaveAttribute('aria-current', 'page');
  await waitForHydration(page);
  await markPage(page);
}

/** Hovers the Error badge in `scope` and checks its tooltip's text. */
async function expectTooltip(page: Page, scope: Locator, text: string) {
  const tip = await hoverErrorBadge(page, scope);
  await expect(tip).toHaveText(text);
  await page.mouse.move(0, 0);
}

/** The tokens of the page's live output are exactly line-1 … line-`n`, each once, in order. */
async function expectLines(page: Page, n: number, options?: { timeout?: number }) {
  const expected = Array.from({ length: n }, (_, i) => `line-${i + 1}`);
  await expect
    .poll(
      async () => {
        const texts = await liveOutput(page).allTextContents();
        return texts.join('\n').split(/\s+/).filter(Boolean);
      },
      { message: `the live output to be line-1 … line-${n}, each once`, ...options },
    )
    .toEqual(expected);
}

// ---------- servers ----------

/** Starts a server of its own, runs `body`, then stops it and removes its data. */
async function withServer(opts: StartOptions, body: (server: RunningServer) => Promise<void>) {
  const server = await startServer(opts);
  try {
    await body(server);
  } finally {
    await server.stop();
    fs.rmSync(server.dataDir, { recursive: true, force: true });
  }
}

// ---------- tests ----------

test.describe('terminal sessions', () => {
  test('a terminal session goes Processing → idle → Error live on the project page and the overview', async ({
    page,
    context,
    request,
  }) => {
    test.setTimeout(90_000);
    const listProblems = collectPageErrors(page);
    const p = await openNewProject(page, 'term-states');
    const plainTitle = `${p.name} · agentdeck`;
    await waitLive(page);
    await markPage(page);

    const overview = await context.newPage();
    const overviewProblems = collectPageErrors(overview);
    try {
      await gotoHydrated(overview, '/');
      await waitLive(overview);
      await markPage(overview);
      const project = projectItem(overview, p.name);
      await expect(project).toHaveCount(1);
      await expect(projectCounts(project)).toHaveCount(0);

      // The agent runs in a folder inside the project.
      const cwd = path.join(p.dir, 'src');
      fs.mkdirSync(cwd);
      const agent = terminalAgent(request, cwd);

      // SessionStart: the session is known, idle, named after the agent.
      await agent.hook('SessionStart', { source: 'startup', model: 'claude-e2e' }, 'applied');
      const startName = `Claude Code ${agent.externalId.slice(0, 8)}`;
      await expect(sessionLink(page, startName)).toBeVisible(LIVE);
      await expectNoBadge(sessionItem(page, startName));
      await expect(activeRow(overview, startName)).toHaveCount(0);

      // A prompt: working, renamed after the prompt's first line.
      const name = uniqueName('Fix the flaky login test');
      await agent.hook('UserPromptSubmit', { prompt: `${name}\nthen push the fix` }, 'applied');
      const item = sessionItem(page, name);
      await expect(item).toHaveCount(1, LIVE);
      await expect(sessionLink(page, startName)).toHaveCount(0);
      await expectProcessing(item);
      await expect(since(item)).toHaveText(/^working\b/);
      await expect(page).toHaveTitle(`(1 working) ${plainTitle}`);

      const row = activeRow(overview, name);
      await expect(row).toHaveCount(1, LIVE);
      await expectProcessing(row);
      await expect(row).toContainText(p.name);
      await expect(since(row)).toHaveText(/^working\b/);
      await expect(projectCounts(project)).toHaveText(['1 working']);

      // Stop: idle — no badge, off the active list, no counts.
      await agent.hook('Stop', { stop_hook_active: false, last_assistant_message: 'Fixed.' }, 'applied');
      await expectNoBadge(item, LIVE);
      await expect(page).toHaveTitle(plainTitle);
      await expect(activeRow(overview, name)).toHaveCount(0, LIVE);
      await expect(projectCounts(project)).toHaveCount(0);

      // The next prompt: working again, the name kept from the first prompt.
      await agent.hook('UserPromptSubmit', { prompt: 'now run the whole suite' }, 'applied');
      await expectProcessing(item, LIVE);
      await expect(sessionLink(page, name)).toBeVisible();
      await expectProcessing(activeRow(overview, name), LIVE);
      await expect(projectCounts(project)).toHaveText(['1 working']);

      // StopFailure: Error, with the failure in the tooltip, on both pages.
      await agent.hook('StopFailure', OVERLOADED, 'applied');
      await expectErrorBadge(item, LIVE);
      await expect(since(item)).toHaveText(/^failed\b/);
      await expectTooltip(page, item, OVERLOADED_MESSAGE);
      await expect(page).toHaveTitle(`(1 error) ${plainTitle}`);

      await expectErrorBadge(row, LIVE);
      await expect(row).toContainText(p.name);
      await expect(since(row)).toHaveText(/^failed\b/);
      await expectTooltip(overview, row, OVERLOADED_MESSAGE);
      await expect(projectCounts(project)).toHaveText(['1 error']);

      const session = (await apiSessionDetail(request, agent.sessionId)).session;
      expect([session.state, session.error_message]).toEqual(['error', OVERLOADED_MESSAGE]);
      await expectSamePage(page);
      await expectSamePage(overview);
    } finally {
      await overview.close();
    }
    expect(listProblems, 'page errors on the project page').toEqual([]);
    expect(overviewProblems, 'page errors on the projects page').toEqual([]);
  });

  test('"Needs approval" shows on every page while the agent waits, and clears on PostToolUse', async ({
    page,
    context,
    request,
  }) => {
    test.setTimeout(90_000);
    const p = await openNewProject(page, 'term-approval');
    const plainTitle = `${p.name} · agentdeck`;
    await waitLive(page);
    await markPage(page);

    const agent = terminalAgent(request, p.dir);
    const name = uniqueName('Run the tests');
    await agent.hook('UserPromptSubmit', { prompt: name }, 'applied');
    const item = sessionItem(page, name);
    await expectProcessing(item, LIVE);
    await expect(attention(item)).toHaveCount(0);

    const overview = await context.newPage();
    const sessionPage = await context.newPage();
    const problems = [...collectPageErrors(page), ...collectPageErrors(overview), ...collectPageErrors(sessionPage)];
    try {
      await gotoHydrated(overview, '/');
      await gotoHydrated(sessionPage, `${p.listPath}/${encodeURIComponent(agent.sessionId)}`);
      await expect(sessionPage.getByRole('heading', { level: 1 })).toHaveText(name);
      for (const watched of [overview, sessionPage]) {
        await waitLive(watched);
        await markPage(watched);
      }
      const row = activeRow(overview, name);
      const project = projectItem(overview, p.name);
      const status = statusRegion(sessionPage);
      await expectProcessing(row);
      await expectProcessing(status);
      await expect(attention(row)).toHaveCount(0);
      await expect(attention(status)).toHaveCount(0);
      await expect(projectCounts(project)).toHaveText(['1 working']);

      // The agent asks to run a command: "Needs approval" beside the badge, everywhere.
      const permission = { tool_name: 'Bash', tool_input: { command: 'npm test' } };
      await agent.hook('PermissionRequest', permission, 'applied');
      for (const scope of [item, row, status]) {
        await expect(attention(scope, 'approval')).toHaveText('Needs approval', LIVE);
        await expectProcessing(scope);
      }
      await expect(page).toHaveTitle(`(1 working · 1 needs you) ${plainTitle}`);
      await expect(overview).toHaveTitle(/^\(.*\b1 needs you\b.*\) Projects · agentdeck$/);
      await expect(projectCounts(project)).toHaveText(['1 working', '1 needs you']);

      // Asked again (a replay): nothing changes.
      await agent.hook('PermissionRequest', permission, 'unchanged');

      // Approved: the tool ran, the marker goes; still working.
      await agent.hook('PostToolUse', { tool_name: 'Bash', tool_response: { stdout: 'ok' } }, 'applied');
      for (const scope of [item, row, status]) {
        await expect(attention(scope)).toHaveCount(0, LIVE);
        await expectProcessing(scope);
      }
      await expect(page).toHaveTitle(`(1 working) ${plainTitle}`);
      await expect(overview).not.toHaveTitle(/needs you/);
      await expect(projectCounts(project)).toHaveText(['1 working']);

      // A question for the person: "Needs input"; the turn's end clears it.
      await agent.hook(
        'Notification',
        { message: 'Which branch?', notification_type: 'elicitation_dialog' },
        'applied',
      );
      for (const scope of [item, row, status]) {
        await expect(attention(scope, 'input')).toHaveText('Needs input', LIVE);
      }
      await expect(page).toHaveTitle(`(1 working · 1 needs you) ${plainTitle}`);

      await agent.hook('Stop', { stop_hook_active: false, last_assistant_message: 'Done.' }, 'applied');
      await expectNoBadge(item, LIVE);
      await expectNoBadge(status, LIVE);
      await expect(attention(item)).toHaveCount(0);
      await expect(attention(status)).toHaveCount(0);
      await expect(activeRow(overview, name)).toHaveCount(0, LIVE);
      await expect(projectCounts(project)).toHaveCount(0);
      await expect(page).toHaveTitle(plainTitle);
      await expect(overview).not.toHaveTitle(/needs you/);

      const session = (await apiSessionDetail(request, agent.sessionId)).session;
      expect([session.state, session.attention ?? null]).toEqual(['idle', null]);
      await expectSamePage(page);
      await expectSamePage(overview);
      await expectSamePage(sessionPage);
    } finally {
      await overview.close();
      await sessionPage.close();
    }
    expect(problems, 'page errors').toEqual([]);
  });

  test('the projects page counts follow runs live, and its filters show only what they name', async ({
    page,
    request,
  }) => {
    test.setTimeout(120_000);
    // A server of its own: the "Active sessions" list holds only this test's sessions.
    await withServer({}, async (server) => {
      const problems = collectPageErrors(page);
      const p = await openNewProject(page, 'term-counts', server.url);
      const shell = await apiCreateSession(request, p.projectId, uniqueName('shell'), server.url);
      const failedShell = await apiCreateSession(request, p.projectId, uniqueName('shell-fails'), server.url);

      await gotoHydrated(page, `${server.url}/`);
      await waitLive(page);
      await markPage(page);
      const project = projectItem(page, p.name);
      await expect(projectCounts(project)).toHaveCount(0);
      await expect(activeRows(page)).toHaveCount(0);

      // A shell run: "1 working" while it goes, then nothing.
      await apiSend(request, shell.id, 'sleep 2', server.url);
      await expect(projectCounts(project)).toHaveText(['1 working']);
      await expectActive(page, [shell.name]);
      await expectProcessing(activeRow(page, shell.name));
      await expect(page).toHaveTitle('(1 working) Projects · agentdeck');
      await expect(projectCounts(project)).toHaveCount(0, LIVE);
      await expect(activeRows(page)).toHaveCount(0);
      await expect(page).toHaveTitle('Projects · agentdeck');

      // A terminal session fails, then a shell run fails.
      const failing = terminalAgent(request, p.dir, server.url);
      const failingName = uniqueName('Deploy');
      await failing.hook('UserPromptSubmit', { prompt: failingName }, 'applied');
      await failing.hook('StopFailure', OVERLOADED, 'applied');
      await expect(projectCounts(project)).toHaveText(['1 error'], LIVE);
      await apiSend(request, failedShell.id, 'echo broken >&2; exit 3', server.url);
      await waitForState(request, failedShell.id, 'error', server.url);
      await expect(projectCounts(project)).toHaveText(['2 error'], LIVE);

      // A terminal session waits for approval.
      const waiting = terminalAgent(request, p.dir, server.url);
      const waitingName = uniqueName('Refactor');
      await waiting.hook('UserPromptSubmit', { prompt: waitingName }, 'applied');
      await waiting.hook('PermissionRequest', { tool_name: 'Edit', tool_input: { file_path: 'a.rs' } }, 'applied');
      await expect(projectCounts(project)).toHaveText(['1 working', '2 error', '1 needs you'], LIVE);
      await expect(page).toHaveTitle('(1 working · 2 error · 1 needs you) Projects · agentdeck');

      // All: newest change first.
      await expectActive(page, [waitingName, failedShell.name, failingName]);
      await expect(attention(activeRow(page, waitingName), 'approval')).toHaveText('Needs approval');
      await expectErrorBadge(activeRow(page, failingName));
      await expectErrorBadge(activeRow(page, failedShell.name));

      // Failed: only the failed ones, each with its Error badge.
      await chooseFilter(page, 'Failed');
      await expectActive(page, [failedShell.name, failingName]);
      for (const name of [failedShell.name, failingName]) await expectErrorBadge(activeRow(page, name));
      await expect(processingBadge(activeList(page))).toHaveCount(0);
      await expect(attention(activeList(page))).toHaveCount(0);
      await expectTooltip(page, activeRow(page, failingName), OVERLOADED_MESSAGE);

      // Working, and Needs you: only the waiting one.
      await chooseFilter(page, 'Working');
      await expectActive(page, [waitingName]);
      await expectProcessing(activeRow(page, waitingName));
      await chooseFilter(page, 'Needs you');
      await expectActive(page, [waitingName]);
      await expect(attention(activeRow(page, waitingName), 'approval')).toBeVisible();

      // While "Failed" is shown, the waiting one fails: it joins the list live, first.
      await chooseFilter(page, 'Failed');
      await expectActive(page, [failedShell.name, failingName]);
      await waiting.hook('StopFailure', OVERLOADED, 'applied');
      await expectActive(page, [waitingName, failedShell.name, failingName], LIVE);
      await expectErrorBadge(activeRow(page, waitingName));
      await expect(attention(activeList(page))).toHaveCount(0);
      await expect(projectCounts(project)).toHaveText(['3 error']);
      await expectSamePage(page);

      // All again: the same three.
      await chooseFilter(page, 'All');
      await expectActive(page, [waitingName, failedShell.name, failingName]);
      expect(problems, 'page errors on the projects page').toEqual([]);
    });
  });

  test('a session page opened mid-run shows the output printed before it opened, then the rest', async ({
    page,
    context,
    request,
  }) => {
    test.setTimeout(60_000);
    const p = await openNewProject(page, 'term-backlog');
    const session = await apiCreateSession(request, p.projectId, uniqueName('counter'));
    const sessionPath = `${p.listPath}/${encodeURIComponent(session.id)}`;
    // 40 lines over about 4 s, then 5 s more so the run is still going when
    // the late page has caught up.
    const command = 'for i in $(seq 1 40); do echo line-$i; sleep 0.1; done; sleep 5';

    // A page open from the start sees when line-10 is out.
    await gotoHydrated(page, sessionPath);
    await waitLive(page);
    await apiSend(request, session.id, command);
    await expectProcessing(statusRegion(page), LIVE);
    await expect(liveOutput(page)).toContainText(/\bline-10\b/, LIVE);

    const late = await context.newPage();
    const problems = [...collectPageErrors(page), ...collectPageErrors(late)];
    try {
      await gotoHydrated(late, sessionPath);
      await markPage(late);
      const status = statusRegion(late);
      await expectProcessing(status);
      // Lines 1–10 were printed before this page existed: they come from the backlog.
      await expect(liveOutput(late)).toContainText(/\bline-1\b/);
      await waitLive(late);

      // Then live to the end, each line once, in order — on both pages.
      await expectLines(late, 40, LIVE);
      await expectLines(page, 40);
      await expectProcessing(status);

      await expectNoBadge(status, LIVE);
      await expect(messageItem(late, command)).toContainText(/succeeded/, LIVE);
      await expectSamePage(late);
    } finally {
      await late.close();
    }
    expect(problems, 'page errors on the session pages').toEqual([]);
  });

  test('the projects page asks for `agentdeck hooks install` when no hooks are installed', async ({
    page,
    request,
  }) => {
    test.setTimeout(60_000);
    // The agents' settings folders are empty ones, never this machine's.
    const agentHome = makeTempDir('agentdeck-e2e-home-');
    const env = { CLAUDE_CONFIG_DIR: path.join(agentHome, 'claude'), CODEX_HOME: path.join(agentHome, 'codex') };
    for (const dir of Object.values(env)) fs.mkdirSync(dir);
    try {
      await withServer({ env }, async (server) => {
        const p = await openNewProject(page, 'term-card', server.url);
        await gotoHydrated(page, `${server.url}/`);
        await markPage(page);
        const card = page.getByRole('region', { name: 'Terminal sessions', exact: true });
        await expect(card.getByRole('heading', { name: 'Terminal sessions', exact: true })).toBeVisible();
        await expect(card.getByText(/agentdeck hooks install/).first()).toBeVisible();
        await expect(activeRows(page)).toHaveCount(0);

        // A hook from a folder in no project is set aside (202) and shows nothing.
        const outside = makeProjectDir(uniqueName('no-project'));
        const setAside = await postHook(
          request,
          {
            session_id: randomUUID(),
            cwd: outside,
            permission_mode: 'default',
            hook_event_name: 'UserPromptSubmit',
            prompt: 'hello from nowhere',
          },
          { baseUrl: server.url },
        );
        expect([setAside.status, setAside.answer.outcome]).toEqual([202, 'no_project']);
        expect(setAside.answer.session_id ?? null).toBeNull();

        // One from the project's folder shows up live.
        const agent = terminalAgent(request, p.dir, server.url);
        const name = uniqueName('Hello');
        await agent.hook('UserPromptSubmit', { prompt: name }, 'applied');
        await expectActive(page, [name], LIVE);
        await expectProcessing(activeRow(page, name));
        await expect(page.getByText('hello from nowhere')).toHaveCount(0);
        await expectSamePage(page);
      });
    } finally {
      fs.rmSync(agentHome, { recursive: true, force: true });
    }
  });
});
