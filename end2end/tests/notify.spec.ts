import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect, gotoHydrated, makeProjectDir, startServer, test, uniqueName } from './fixtures';
import { apiCreateSession, apiSend, expectErrorBadge, statusRegion } from './helpers';

// The Notifications page: a server-rendered page of plain forms, so it is
// used here the way a person would, with JavaScript off as well as on.

/** A local receiver that answers 200 and keeps what it was sent. */
async function startReceiver() {
  const got: { path: string; headers: http.IncomingHttpHeaders; body: string }[] = [];
  const receiver = http.createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      got.push({ path: request.url ?? '', headers: request.headers, body });
      response.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const { port } = receiver.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, got, close: () => receiver.close() };
}

for (const javaScriptEnabled of [true, false]) {
  test.describe(`JavaScript ${javaScriptEnabled ? 'on' : 'off'}`, () => {
    test.use({ javaScriptEnabled });

    test('add a target, send a test, change its events, remove it', async ({ page }) => {
      const receiver = await startReceiver();
      try {
        const path = `/ntfy-${javaScriptEnabled ? 'js' : 'nojs'}`;
        await page.goto('/');
        await page.getByRole('link', { name: 'Notifications' }).click();
        await expect(page.getByRole('heading', { level: 1 })).toHaveText('Notifications');

        await page.getByLabel('Kind').selectOption('ntfy');
        await page.getByRole('textbox', { name: 'URL' }).fill(receiver.url + path);
        await page.getByRole('button', { name: 'Add target' }).click();

        const target = page.getByRole('listitem', {
          name: `ntfy http://127.0.0.1/…${path.slice(-4)}`,
          exact: true,
        });
        await expect(target).toBeVisible();
        await expect(target).toContainText('Nothing sent yet');
        // Masked: the port and the path are not shown whole.
        expect(await page.content()).not.toContain(receiver.url + path);

        await target.getByRole('button', { name: 'Send test' }).click();
        await expect.poll(() => receiver.got.filter((r) => r.path === path).length).toBe(1);
        const sent = receiver.got.find((r) => r.path === path)!;
        expect(sent.headers['title']).toBe('agentdeck test notification');
        await expect(async () => {
          await page.reload();
          await expect(target).toContainText('200 OK after 1 attempt');
        }).toPass({ timeout: 15_000 });

        await target.getByRole('checkbox', { name: 'Run finished' }).uncheck();
        await target.getByRole('button', { name: 'Save' }).click();
        await expect(target.getByRole('checkbox', { name: 'Run finished' })).not.toBeChecked();
        await expect(target.getByRole('checkbox', { name: 'Run failed' })).toBeChecked();

        await target.getByRole('button', { name: 'Remove' }).click();
        await expect(target).toHaveCount(0);
      } finally {
        receiver.close();
      }
    });
  });
}

test('a bad URL is refused with a reason', async ({ page }) => {
  await page.goto('/notifications');
  await page.getByLabel('Kind').selectOption('webhook');
  // `type=url` accepts ftp:, the server does not.
  await page.getByRole('textbox', { name: 'URL' }).fill('ftp://example.com/x');
  await page.getByRole('button', { name: 'Add target' }).click();
  await expect(page.getByRole('alert')).toHaveText(/http:\/\/ or https:\/\//);
});

test('a failed run reaches a webhook that first answers 500, and a slow target never delays the badge', async ({
  page,
  request,
}) => {
  // One receiver answers 500 once, then 200; the other takes 20 s to answer.
  const got: { body: string; status: number }[] = [];
  const flaky = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const status = got.length === 0 ? 500 : 200;
      got.push({ body, status });
      res.writeHead(status).end();
    });
  });
  const slow = http.createServer((_req, res) => {
    setTimeout(() => res.writeHead(200).end(), 20_000);
  });
  await new Promise<void>((resolve) => flaky.listen(0, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
  const flakyUrl = `http://127.0.0.1:${(flaky.address() as AddressInfo).port}/hook`;
  const slowUrl = `http://127.0.0.1:${(slow.address() as AddressInfo).port}/slow`;
  const server = await startServer({
    args: ['--notify', `webhook=${slowUrl}`, '--notify', `webhook=${flakyUrl}`, '--notify-retry-ms', '100'],
  });
  try {
    const dir = makeProjectDir(uniqueName('notify'));
    const added = await request.post(`${server.url}/api/projects`, { data: { path: dir } });
    expect(added.status(), await added.text()).toBe(201);
    const projectId = (await added.json()).id as number;
    const session = await apiCreateSession(request, projectId, 'fails', server.url);
    await gotoHydrated(page, `${server.url}/projects/${projectId}/sessions/${session.id}`);

    // A slow target's delivery happens first (and keeps a worker busy), yet
    // the badge turns at once: deliveries never sit on the write path.
    await apiSend(request, session.id, 'sleep 0.2; exit 3', server.url);
    const started = Date.now();
    await expectErrorBadge(statusRegion(page), { timeout: 5_000 });
    expect(Date.now() - started).toBeLessThan(5_000);

    // The 500 is retried; the retry carries the same failure.
    await expect.poll(() => got.map((g) => g.status), { timeout: 15_000 }).toEqual([500, 200]);
    const sent = JSON.parse(got[1].body);
    expect(sent.event).toBe('failed');
    expect(sent.session.id).toBe(session.id);
    expect(sent.project.id).toBe(projectId);
    expect(sent.to).toBe('error');
    expect(sent.error_message).toContain('exited with status 3');
    expect(sent.link).toBe(`${server.url}/projects/${projectId}/sessions/${session.id}`);
    expect(got[0].body).toBe(got[1].body);

    // Each target shows its last delivery.
    await page.goto(`${server.url}/notifications`);
    await expect(page.getByText('200 OK after 2 attempts')).toBeVisible({ timeout: 10_000 });
  } finally {
    await server.stop();
    flaky.close();
    slow.closeAllConnections();
    slow.close();
  }
});
