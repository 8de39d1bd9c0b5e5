import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  request as newRequest,
  type APIRequestContext,
  type BrowserContext,
  type Page,
  type Request,
  type Response,
} from '@playwright/test';
import {
  expect,
  gotoHydrated,
  makeProjectDir,
  startServer,
  test,
  uniqueName,
  waitForHydration,
  type RunningServer,
  type StartOptions,
} from './fixtures';
import {
  SESSION_PATH,
  apiCreateSession,
  apiSend,
  apiSessionDetail,
  collectPageErrors,
  createSession,
  expectNoBadge,
  expectSamePage,
  markPage,
  messageItem,
  openNewProject,
  processingBadge,
  projectLink,
  send,
  sessionLink,
  statusRegion,
  waitForState,
} from './helpers';

// Hardening as a browser sees it: access tokens (login page, cookie, the
// read-only token), the security headers and CSP on every page (which must
// still hydrate and stay live under it), and pages of another site that try
// to frame agentdeck or post to it.
//
// Tests against the worker's server (tokenless, loopback) make their own
// projects; tests of tokens start their own servers.

/** What a user waits for on a slow machine: a page, a login, a run's end. */
const SLOW = { timeout: 20_000 };

/** The cookie a login sets. */
const TOKEN_COOKIE = 'agentdeck_token';
/** The login URL a server with a generated token prints: `http://HOST:PORT/?token=…`. */
const LOGIN_URL_LINE = /(https?:\/\/\S+\/\?token=[^\s&#]+)/;

function newToken(): string {
  return randomBytes(24).toString('hex');
}

// ---------- servers ----------

/** Starts a server with `opts`, runs `body`, then stops it and removes its data. */
async function withServer(opts: StartOptions, body: (server: RunningServer) => Promise<void>) {
  const server = await startServer(opts);
  try {
    await body(server);
  } finally {
    await server.stop();
    fs.rmSync(server.dataDir, { recursive: true, force: true });
  }
}

/** A request context for `server` that sends no credentials, or the bearer `token`. */
async function apiClient(server: RunningServer, token?: string): Promise<APIRequestContext> {
  return newRequest.newContext({
    baseURL: server.url,
    extraHTTPHeaders: token ? { Authorization: `Bearer ${token}` } : {},
  });
}

interface ApiProject {
  id: number;
  name: string;
  path: string;
}

async function apiProjects(api: APIRequestContext, baseUrl = ''): Promise<ApiProject[]> {
  const res = await api.get(`${baseUrl}/api/projects`);
  expect(res.status(), await res.text()).toBe(200);
  return res.json();
}

/**
 * Adds a project for `dir` through the `add_project` server function (the
 * JSON API has no route for it) and returns its id.
 */
async function apiAddProject(api: APIRequestContext, dir: string, baseUrl = ''): Promise<number> {
  const res = await api.post(`${baseUrl}/rpc/add_project`, { form: { path: dir } });
  expect(res.ok(), `add_project answered ${res.status()}: ${await res.text()}`).toBe(true);
  const project = (await apiProjects(api, baseUrl)).find((p) => p.path === dir);
  expect(project, `project ${dir} after add_project`).toBeDefined();
  return project!.id;
}

async function apiSessionNames(api: APIRequestContext, projectId: number, baseUrl = ''): Promise<string[]> {
  const res = await api.get(`${baseUrl}/api/projects/${projectId}/sessions`);
  expect(res.status(), await res.text()).toBe(200);
  return ((await res.json()) as { name: string }[]).map((s) => s.name);
}

/** A project with one idle shell session, made through the JSON API. */
async function apiProjectWithSession(api: APIRequestContext, baseUrl = '') {
  const name = uniqueName('sec');
  const dir = makeProjectDir(name);
  const projectId = await apiAddProject(api, dir, baseUrl);
  const session = await apiCreateSession(api, projectId, uniqueName('session'), baseUrl);
  return {
    name,
    dir,
    projectId,
    session,
    listPath: `/projects/${projectId}/sessions`,
    sessionPath: `/projects/${projectId}/sessions/${encodeURIComponent(session.id)}`,
  };
}

// ---------- another site ----------

interface OtherSite {
  /** `http://localhost:PORT`: another origin and another site than `http://127.0.0.1:…`. */
  origin: string;
  close(): Promise<void>;
}

/** A tiny web server on another port serving `pages` (path → HTML). */
async function startOtherSite(pages: Record<string, string>): Promise<OtherSite> {
  const handler: http.RequestListener = (req, res) => {
    const body = pages[new URL(req.url ?? '/', 'http://other.invalid').pathname];
    if (body === undefined) {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found');
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(body);
  };
  const listen = (server: http.Server, port: number, host: string) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
  const v4 = http.createServer(handler);
  await listen(v4, 0, '127.0.0.1');
  const { port } = v4.address() as AddressInfo;
  // `localhost` may resolve to ::1 first: serve there too where IPv6 exists.
  const servers = [v4];
  const v6 = http.createServer(handler);
  try {
    await listen(v6, port, '::1');
    servers.push(v6);
  } catch {
    // no IPv6 loopback: 127.0.0.1 alone serves localhost
  }
  return {
    origin: `http://localhost:${port}`,
    close: async () => {
      for (const server of servers) {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    },
  };
}

async function withOtherSite(pages: Record<string, string>, body: (site: OtherSite) => Promise<void>) {
  const site = await startOtherSite(pages);
  try {
    await body(site);
  } finally {
    await site.close();
  }
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/'/g, '&#39;').replace(/</g, '&lt;');
}

/** A page that posts a form to `action` as soon as it loads. */
function autoPostPage(action: string, fields: Record<string, string>, enctype?: string): string {
  const inputs = Object.entries(fields)
    .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`)
    .join('');
  const encoding = enctype ? ` enctype="${enctype}"` : '';
  return (
    `<!doctype html><title>other site</title>` +
    `<form method="post" action="${escapeHtml(action)}"${encoding}>${inputs}</form>` +
    `<script>document.forms[0].submit()</script>`
  );
}

/**
 * Opens a page of another site that frames `target`, and checks that the
 * browser did not render agentdeck inside it. A second frame of the other
 * site's own page shows that framing as such works in this browser.
 */
async function expectFramingRefused(page: Page, target: string) {
  await withOtherSite(
    {
      '/': `<!doctype html><title>other site</title>
        <iframe name="control" src="/inner" width="400" height="200"></iframe>
        <iframe name="victim" src="${escapeHtml(target)}" width="800" height="600"></iframe>`,
      '/inner': '<!doctype html><p>the other site framed itself</p>',
    },
    async (site) => {
      // The browser asks agentdeck for the page (answered, or failed when refused).
      const outcomes: string[] = [];
      const onResponse = (r: Response) => {
        if (r.url() === target) outcomes.push(`answered ${r.status()}`);
      };
      const onFailed = (r: Request) => {
        if (r.url() === target) outcomes.push(`failed: ${r.failure()?.errorText}`);
      };
      page.on('response', onResponse);
      page.on('requestfailed', onFailed);
      try {
        // `load` of the top page waits for both frames to finish, refused or not.
        await page.goto(`${site.origin}/`, { waitUntil: 'load', ...SLOW });
        await expect
          .poll(() => outcomes.length, { message: `the browser requested ${target}`, ...SLOW })
          .toBeGreaterThan(0);
      } finally {
        page.off('response', onResponse);
        page.off('requestfailed', onFailed);
      }
      const control = page.frameLocator('iframe[name="control"]');
      await expect(control.getByText('the other site framed itself')).toBeVisible();

      // …but does not show it.
      const frame = await (await page.locator('iframe[name="victim"]').elementHandle())!.contentFrame();
      const html = frame
        ? await Promise.race([
            frame.evaluate(() => document.documentElement?.outerHTML ?? '').catch(() => ''),
            new Promise<string>((resolve) => setTimeout(() => resolve(''), 5_000)),
          ])
        : '';
      expect(html, `the framed ${target} (${outcomes.join(', ')})`).not.toMatch(/agentdeck/i);
      expect(html).not.toContain('data-hydrated');
      expect(html).not.toContain('Access token');
    },
  );
}

// ---------- headers ----------

/** `Content-Security-Policy` as directive → sources. */
function parseCsp(header: string): Map<string, string[]> {
  const directives = new Map<string, string[]>();
  for (const part of header.split(';')) {
    const [name, ...sources] = part.trim().split(/\s+/);
    if (name) directives.set(name.toLowerCase(), sources);
  }
  return directives;
}

/** The nonce in the CSP's `script-src`. */
function scriptNonce(header: string): string {
  const sources = parseCsp(header).get('script-src') ?? [];
  const nonce = sources.map((s) => /^'nonce-([^']+)'$/.exec(s)?.[1]).find(Boolean);
  expect(nonce, `a 'nonce-…' in script-src of ${header}`).toBeDefined();
  return nonce!;
}

/** The headers every page carries (`what` names the page in failures). */
function expectPageHeaders(headers: Record<string, string>, what: string) {
  const header = headers['content-security-policy'];
  expect(header, `${what}: Content-Security-Policy`).toBeTruthy();
  const csp = parseCsp(header);
  const directive = (name: string) => csp.get(name) ?? [];
  expect(directive('frame-ancestors'), `${what}: frame-ancestors in ${header}`).toEqual(["'none'"]);
  expect(directive('default-src'), `${what}: default-src in ${header}`).toEqual(["'self'"]);
  expect(directive('object-src'), `${what}: object-src in ${header}`).toEqual(["'none'"]);
  expect(directive('base-uri'), `${what}: base-uri in ${header}`).toEqual(["'none'"]);
  expect(directive('form-action'), `${what}: form-action in ${header}`).toEqual(["'self'"]);
  scriptNonce(header);
  const scripts = csp.get('script-src') ?? [];
  for (const unsafe of ["'unsafe-inline'", "'unsafe-eval'", '*', 'http:', 'https:', 'data:']) {
    expect(scripts, `${what}: script-src must not allow ${unsafe}`).not.toContain(unsafe);
  }
  // connect-src falls back to default-src; either way, only this server.
  for (const source of csp.get('connect-src') ?? []) {
    expect(["'self'"], `${what}: connect-src allows ${source}`).toContain(source);
  }
  expect(headers['x-frame-options']?.toUpperCase(), `${what}: X-Frame-Options`).toBe('DENY');
  expect(headers['x-content-type-options'], `${what}: X-Content-Type-Options`).toBe('nosniff');
  expect(headers['referrer-policy'], `${what}: Referrer-Policy`).toBe('no-referrer');
}

/** Every inline script of `html` (not data blocks such as JSON) carries `nonce`. */
function expectInlineScriptsNonced(html: string, nonce: string, what: string) {
  const inline = [...html.matchAll(/<script\b([^>]*)>/gi)]
    .map((m) => m[1])
    .filter((attrs) => !/\bsrc\s*=/i.test(attrs))
    .filter((attrs) => {
      const type = /\btype\s*=\s*["']?([^"'\s>]+)/i.exec(attrs)?.[1]?.toLowerCase();
      return type === undefined || type === 'module' || type.includes('javascript');
    });
  for (const attrs of inline) {
    expect(attrs, `${what}: an inline <script> without the response's nonce`).toContain(`nonce="${nonce}"`);
  }
}

// ---------- page health ----------

/**
 * Records every CSP violation the page's documents report, across
 * navigations (the listener is installed before any page script runs).
 */
async function collectCspViolations(page: Page): Promise<string[]> {
  const violations: string[] = [];
  await page.exposeFunction('__agentdeckCspViolation', (report: string) => violations.push(report));
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      const blocked = `${e.violatedDirective} blocked ${e.blockedURI || 'inline'}`;
      const where = `${e.sourceFile}:${e.lineNumber} on ${document.location.href}`;
      (window as any).__agentdeckCspViolation(`${blocked} at ${where}`);
    });
  });
  return violations;
}

/** Console errors the browser logs for a 401 answer (the login page itself) are expected. */
function withoutUnauthorized(problems: string[]): string[] {
  return problems.filter((p) => !/Failed to load resource: the server responded with a status of 401/.test(p));
}

// ---------- the login page ----------

function tokenInput(page: Page) {
  return page.getByLabel('Access token', { exact: true });
}

function logInButton(page: Page) {
  return page.getByRole('button', { name: 'Log in', exact: true });
}

async function expectLoginPage(page: Page) {
  await expect(tokenInput(page)).toBeVisible(SLOW);
  await expect(tokenInput(page)).toHaveAttribute('type', 'password');
  await expect(tokenInput(page)).toHaveAttribute('name', 'token');
  await expect(logInButton(page)).toBeVisible();
}

/**
 * Types `token` into the login page and submits it; returns the answer to
 * `POST /login` once the page it leads to has loaded.
 */
async function submitLogin(page: Page, token: string) {
  await expectLoginPage(page);
  await tokenInput(page).fill(token);
  const posted = page.waitForResponse(
    (r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/login',
    SLOW,
  );
  const loaded = page.waitForEvent('load', SLOW);
  await logInButton(page).click();
  const answer = await posted;
  await loaded;
  return answer;
}

async function tokenCookie(context: BrowserContext, url: string) {
  return (await context.cookies(url)).find((c) => c.name === TOKEN_COOKIE);
}

async function expectTokenCookie(context: BrowserContext, url: string) {
  const cookie = await tokenCookie(context, url);
  expect(cookie, `the ${TOKEN_COOKIE} cookie`).toBeDefined();
  expect(cookie!.httpOnly, 'the cookie is HttpOnly').toBe(true);
  expect(cookie!.sameSite, 'the cookie is SameSite=Strict').toBe('Strict');
}

/** From the login page at `/`, logs in with `token` and lands on the projects page, hydrated. */
async function logIn(page: Page, server: RunningServer, token: string) {
  const answer = await submitLogin(page, token);
  expect(answer.status(), 'POST /login with the right token').toBe(303);
  await expect(page).toHaveURL(`${server.url}/`, SLOW);
  await waitForHydration(page);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Projects');
}

// ---------- tests ----------

test.describe('headers and CSP', () => {
  test('every page carries the CSP and frame headers; API answers are not cached', async ({ request }) => {
    const { projectId, session, listPath, sessionPath } = await apiProjectWithSession(request);

    const pages: [string, number][] = [
      ['/', 200],
      [listPath, 200],
      [sessionPath, 200],
      ['/no/such/page', 404],
    ];
    for (const [path, status] of pages) {
      const res = await request.get(path);
      expect(res.status(), path).toBe(status);
      const headers = res.headers();
      expectPageHeaders(headers, path);
      expectInlineScriptsNonced(await res.text(), scriptNonce(headers['content-security-policy']), path);
    }

    // A nonce is good for one answer only.
    const nonces = new Set<string>();
    for (let i = 0; i < 3; i += 1) {
      nonces.add(scriptNonce((await request.get('/')).headers()['content-security-policy']));
    }
    expect(nonces.size, 'each page answer has its own nonce').toBe(3);

    const apiPaths = [
      '/api/projects',
      `/api/projects/${projectId}/sessions`,
      `/api/sessions/${encodeURIComponent(session.id)}`,
    ];
    for (const path of apiPaths) {
      const res = await request.get(path);
      expect(res.status(), path).toBe(200);
      expect(res.headers()['cache-control'], `${path}: Cache-Control`).toContain('no-store');
      expect(res.headers()['x-content-type-options'], `${path}: X-Content-Type-Options`).toBe('nosniff');
    }
  });

  test('pages hydrate under the CSP with no violations or console errors, and stay live', async ({ page }) => {
    test.setTimeout(60_000);
    const problems = collectPageErrors(page, { consoleErrors: true });
    const violations = await collectCspViolations(page);

    // The projects page, then a project's sessions page (added through the form).
    const { listPath } = await openNewProject(page, 'csp');
    expect(violations, 'CSP violations on the projects and sessions pages').toEqual([]);

    // A session page, reached by its link.
    const name = uniqueName('csp-session');
    await createSession(page, name);
    await sessionLink(page, name).click();
    await expect(page).toHaveURL(SESSION_PATH);
    await waitForHydration(page);

    // A run's answer arrives live: the change stream works under connect-src.
    await markPage(page);
    await send(page, 'echo hi');
    await expect(messageItem(page, 'echo hi')).toContainText(/succeeded/, SLOW);
    await expect(messageItem(page, 'hi')).toBeVisible(SLOW);
    await expectNoBadge(statusRegion(page), SLOW);
    await expectSamePage(page);

    // And a fresh load of each page hydrates too.
    for (const path of ['/', listPath, new URL(page.url()).pathname]) {
      await gotoHydrated(page, path);
    }
    expect(violations, 'CSP violations').toEqual([]);
    expect(problems, 'console errors or page errors').toEqual([]);
  });
});

test.describe('another site', () => {
  test('cannot frame agentdeck', async ({ page, server }) => {
    await expectFramingRefused(page, `${server.url}/`);
  });

  test('cannot frame the login page', async ({ page }) => {
    await withServer({ args: ['--token', newToken()] }, async (server) => {
      await expectFramingRefused(page, `${server.url}/`);
    });
  });

  test('cannot post a form to agentdeck: refused with 403, nothing created', async ({ page, request, server }) => {
    const { projectId } = await apiProjectWithSession(request);
    const before = await apiSessionNames(request, projectId);
    const viaServerFn = uniqueName('csrf-rpc');
    const viaApi = uniqueName('csrf-api');
    const rpc = `${server.url}/rpc/create_session`;
    const api = `${server.url}/api/projects/${projectId}/sessions`;

    await withOtherSite(
      {
        '/rpc': autoPostPage(rpc, { project_id: String(projectId), name: viaServerFn, agent: 'shell' }),
        // The text/plain trick: the body reads as JSON.
        '/api': autoPostPage(api, { [`{"name":"${viaApi}","agent":"shell","pad":"`]: '"}' }, 'text/plain'),
      },
      async (site) => {
        for (const [path, target] of [
          ['/rpc', rpc],
          ['/api', api],
        ]) {
          const posted = page.waitForResponse((r) => r.url() === target && r.request().method() === 'POST', SLOW);
          await page.goto(`${site.origin}${path}`);
          const answer = await posted;
          expect(answer.status(), `a cross-site post to ${target}`).toBe(403);
        }
      },
    );

    expect(await apiSessionNames(request, projectId)).toEqual(before);
  });

  test('cannot post as a logged-in user: nothing created', async ({ page }) => {
    const token = newToken();
    await withServer({ args: ['--token', token] }, async (server) => {
      const api = await apiClient(server, token);
      try {
        const { projectId } = await apiProjectWithSession(api);
        const before = await apiSessionNames(api, projectId);
        await page.goto(`${server.url}/?token=${token}`);
        await waitForHydration(page);
        await expectTokenCookie(page.context(), server.url);

        const name = uniqueName('csrf-cookie');
        const rpc = `${server.url}/rpc/create_session`;
        await withOtherSite(
          { '/': autoPostPage(rpc, { project_id: String(projectId), name, agent: 'shell' }) },
          async (site) => {
            const posted = page.waitForResponse((r) => r.url() === rpc && r.request().method() === 'POST', SLOW);
            await page.goto(`${site.origin}/`);
            const answer = await posted;
            // No cookie goes along (SameSite=Strict), and the origin is foreign.
            const status = answer.status();
            expect([401, 403], `a cross-site post to ${rpc} answered ${status}`).toContain(status);
          },
        );
        expect(await apiSessionNames(api, projectId)).toEqual(before);
      } finally {
        await api.dispose();
      }
    });
  });
});

test.describe('a required token', () => {
  let server: RunningServer;
  let token: string;
  let loginUrl: string;
  let project: Awaited<ReturnType<typeof apiProjectWithSession>>;

  test.beforeAll(async () => {
    server = await startServer({ args: ['--require-token'] });
    loginUrl = (await server.waitForStdout(LOGIN_URL_LINE))[1];
    token = new URL(loginUrl).searchParams.get('token')!;
    const api = await apiClient(server, token);
    try {
      project = await apiProjectWithSession(api);
    } finally {
      await api.dispose();
    }
  });

  test.afterAll(async () => {
    await server?.stop();
    if (server) fs.rmSync(server.dataDir, { recursive: true, force: true });
  });

  test('is printed once as a login URL for this server', async () => {
    expect(token.length, 'a token of at least 128 bits').toBeGreaterThanOrEqual(22);
    const printed = new URL(loginUrl);
    expect(printed.port).toBe(new URL(server.url).port);
    expect(printed.pathname).toBe('/');
    expect(server.stdout().split(token).length - 1, 'the token is printed once').toBe(1);
  });

  test('without it the API answers 401 with WWW-Authenticate: Bearer; with it, 200', async () => {
    const anonymous = await apiClient(server);
    const wrong = await apiClient(server, newToken());
    const right = await apiClient(server, token);
    try {
      const sid = encodeURIComponent(project.session.id);
      for (const api of [anonymous, wrong]) {
        const paths = [
          '/api/projects',
          `/api/projects/${project.projectId}/sessions`,
          `/api/sessions/${sid}`,
          '/api/events',
        ];
        for (const path of paths) {
          const res = await api.get(path);
          expect(res.status(), path).toBe(401);
          expect(res.headers()['www-authenticate'], `${path}: WWW-Authenticate`).toMatch(/^Bearer\b/i);
          const body = await res.json();
          expect(typeof body.error, `${path}: {"error": …}`).toBe('string');
          expect(JSON.stringify(body)).not.toContain(project.name);
        }
        const post = await api.post(`/api/projects/${project.projectId}/sessions`, {
          data: { name: uniqueName('anonymous'), agent: 'shell' },
        });
        expect(post.status(), 'a write without the token').toBe(401);
      }
      const projects = await apiProjects(right);
      expect(projects.map((p) => p.name)).toContain(project.name);
      expect(await apiSessionNames(right, project.projectId)).toEqual([project.session.name]);
    } finally {
      await Promise.all([anonymous.dispose(), wrong.dispose(), right.dispose()]);
    }
  });

  test('without it every page is a login page that shows no data', async ({ page }) => {
    const violations = await collectCspViolations(page);
    for (const path of ['/', project.listPath, project.sessionPath]) {
      const res = await page.goto(`${server.url}${path}`);
      expect(res?.status(), path).toBe(401);
      expectPageHeaders(await res!.allHeaders(), `login page at ${path}`);
      await expectLoginPage(page);
      const html = await page.content();
      // (Ids may appear: they are in the URL asked for.)
      for (const secret of [project.name, project.dir, project.session.name]) {
        expect(html, `the login page at ${path} shows ${secret}`).not.toContain(secret);
      }
    }
    expect(await tokenCookie(page.context(), server.url)).toBeUndefined();
    expect(violations, 'CSP violations on the login page').toEqual([]);
  });

  test('the login page logs in: projects page, hydrated, HttpOnly SameSite=Strict cookie', async ({ page }) => {
    test.setTimeout(60_000);
    const problems = collectPageErrors(page, { consoleErrors: true });
    const violations = await collectCspViolations(page);
    await page.goto(`${server.url}/`);

    // A wrong token is refused: the login page again, no cookie.
    await submitLogin(page, newToken());
    await expectLoginPage(page);
    expect(await tokenCookie(page.context(), server.url)).toBeUndefined();

    await logIn(page, server, token);
    await expectTokenCookie(page.context(), server.url);
    await expect(projectLink(page, project.name)).toBeVisible();

    // The cookie opens every page.
    await projectLink(page, project.name).click();
    await waitForHydration(page);
    await expect(page.getByRole('heading', { level: 1 })).toHaveText(project.name);
    await expect(sessionLink(page, project.session.name)).toBeVisible();

    expect(violations, 'CSP violations').toEqual([]);
    expect(withoutUnauthorized(problems), 'console errors or page errors').toEqual([]);
  });

  test('/?token= sets the cookie and redirects to the same URL without the token', async ({ browser }) => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const res = await page.goto(`${server.url}/?token=${token}`);
      expect(res?.status()).toBe(200);
      expect(res?.request().redirectedFrom(), 'a redirect').not.toBeNull();
      const home = new URL(page.url());
      expect(home.origin + home.pathname).toBe(`${server.url}/`);
      expect(home.searchParams.has('token'), `token left in ${page.url()}`).toBe(false);
      await waitForHydration(page);
      await expect(projectLink(page, project.name)).toBeVisible();
      await expectTokenCookie(context, server.url);

      // Deeper pages keep their path and other parameters.
      await context.clearCookies();
      await page.goto(`${server.url}${project.listPath}?state=idle&token=${token}`);
      const landed = new URL(page.url());
      expect(landed.searchParams.has('token'), `token left in ${page.url()}`).toBe(false);
      expect(landed.pathname).toBe(project.listPath);
      expect(landed.searchParams.get('state')).toBe('idle');
      await waitForHydration(page);
      await expect(sessionLink(page, project.session.name)).toBeVisible();
      await expectTokenCookie(context, server.url);

      // A wrong one sets nothing.
      await context.clearCookies();
      const wrong = await page.goto(`${server.url}/?token=${newToken()}`);
      expect(wrong?.status()).toBe(401);
      await expectLoginPage(page);
      expect(await tokenCookie(context, server.url)).toBeUndefined();
    } finally {
      await context.close();
    }
  });
});

test.describe('the read-only token', () => {
  const fullToken = newToken();
  const readOnlyToken = newToken();
  let server: RunningServer;
  let api: APIRequestContext;
  let project: Awaited<ReturnType<typeof apiProjectWithSession>>;

  test.beforeAll(async () => {
    server = await startServer({ args: ['--token', fullToken, '--read-only-token', readOnlyToken] });
    api = await apiClient(server, fullToken);
    project = await apiProjectWithSession(api);
    await apiSend(api, project.session.id, 'echo before');
    await waitForState(api, project.session.id, 'idle');
  });

  test.afterAll(async () => {
    await api?.dispose();
    await server?.stop();
    if (server) fs.rmSync(server.dataDir, { recursive: true, force: true });
  });

  /** Buttons and fields of forms that change something. */
  const WRITE_CONTROLS = ['Add project', 'New session', 'Sync', 'Send', 'Cancel', 'Save', 'Rename', 'Delete'];

  async function expectNoWriteControls(page: Page) {
    for (const name of WRITE_CONTROLS) {
      await expect(page.getByRole('button', { name, exact: true }), `a "${name}" button`).toHaveCount(0);
      await expect(page.locator('summary', { hasText: new RegExp(`^\\s*${name}\\s*$`) })).toHaveCount(0);
    }
    for (const label of ['Project path', 'Project name', 'Session name', 'Message', 'New name']) {
      await expect(page.getByLabel(label, { exact: true }), `a "${label}" field`).toHaveCount(0);
    }
    await expect(page.locator('form[action^="/rpc/"]'), 'server-function forms').toHaveCount(0);
  }

  test('sees projects and sessions live, without any form', async ({ page }) => {
    test.setTimeout(60_000);
    await page.goto(`${server.url}/`);
    await logIn(page, server, readOnlyToken);
    await expect(projectLink(page, project.name)).toBeVisible();
    await expectNoWriteControls(page);

    await projectLink(page, project.name).click();
    await waitForHydration(page);
    await expect(sessionLink(page, project.session.name)).toBeVisible();
    await expectNoWriteControls(page);

    await sessionLink(page, project.session.name).click();
    await expect(page).toHaveURL(SESSION_PATH);
    await waitForHydration(page);
    await expect(messageItem(page, 'echo before')).toContainText(/succeeded/);
    await expectNoWriteControls(page);

    // A run started elsewhere shows up live, still without Cancel.
    await markPage(page);
    await apiSend(api, project.session.id, 'sleep 3; echo read-only-live');
    await expect(processingBadge(statusRegion(page))).toBeVisible(SLOW);
    await expectNoWriteControls(page);
    await expect(messageItem(page, 'read-only-live')).toBeVisible(SLOW);
    await expectNoBadge(statusRegion(page), SLOW);
    await expectSamePage(page);
  });

  test('every write from its page is refused with 403', async ({ page }) => {
    await page.goto(`${server.url}/`);
    await logIn(page, server, readOnlyToken);
    const projectsBefore = await apiProjects(api);
    const messagesBefore = (await apiSessionDetail(api, project.session.id)).messages.length;

    const statuses = await page.evaluate(
      async ({ projectId, sessionId, dir }) => {
        const json = (path: string, body: unknown) =>
          fetch(path, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify(body),
          }).then((r) => r.status);
        const form = (path: string, fields: Record<string, string>) =>
          fetch(path, { method: 'POST', body: new URLSearchParams(fields) }).then((r) => r.status);
        const sid = encodeURIComponent(sessionId);
        return {
          // A read through a server function works: the 403s below are about writing.
          read: await form('/rpc/list_projects', {}),
          apiCreateSession: await json(`/api/projects/${projectId}/sessions`, { name: 'ro-api', agent: 'shell' }),
          apiSend: await json(`/api/sessions/${sid}/messages`, { message: 'echo ro-api' }),
          apiCancel: await json(`/api/sessions/${sid}/cancel`, {}),
          addProject: await form('/rpc/add_project', { path: dir }),
          createSession: await form('/rpc/create_session', {
            project_id: String(projectId),
            name: 'ro-rpc',
            agent: 'shell',
          }),
          renameSession: await form('/rpc/rename_session', { session_id: sessionId, name: 'ro-renamed' }),
          deleteSession: await form('/rpc/delete_session', { session_id: sessionId }),
          sendMessage: await form('/rpc/send_message', { session_id: sessionId, message: 'echo ro-rpc' }),
          cancelRun: await form('/rpc/cancel_run', { session_id: sessionId }),
          syncProject: await form('/rpc/sync_project', { project_id: String(projectId) }),
        };
      },
      {
        projectId: project.projectId,
        sessionId: project.session.id,
        dir: makeProjectDir(uniqueName('ro-project')),
      },
    );
    const { read, ...writes } = statuses;
    expect(read, 'POST /rpc/list_projects as read-only').toBe(200);
    for (const [write, status] of Object.entries(writes)) {
      expect(status, `${write} as read-only`).toBe(403);
    }

    // Nothing changed.
    expect(await apiProjects(api)).toEqual(projectsBefore);
    expect(await apiSessionNames(api, project.projectId)).toEqual([project.session.name]);
    expect((await apiSessionDetail(api, project.session.id)).messages.length).toBe(messagesBefore);
  });
});
