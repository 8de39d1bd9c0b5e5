import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect, test } from './fixtures';

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
