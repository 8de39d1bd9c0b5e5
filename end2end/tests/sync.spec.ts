import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect, gotoHydrated, makeProjectDir, makeTempDir, startServer, test, uniqueName, waitForHydration } from './fixtures';
import { errorBadge, liveIndicator, processingBadge, sessionLink, sessionsList, submitProject } from './helpers';

/** Writes a Claude Code transcript for `cwd`, in a folder named the way Claude names it. */
function writeClaudeTranscript(root: string, cwd: string, sessionId: string, firstMessage: string) {
  const folder = path.join(root, cwd.replace(/[^a-zA-Z0-9]/g, '-'));
  fs.mkdirSync(folder, { recursive: true });
  const line = (type: string, message: unknown, ts: string) =>
    JSON.stringify({ type, sessionId, cwd, timestamp: ts, uuid: `${type}-${ts}`, message }) + '\n';
  fs.writeFileSync(
    path.join(folder, `${sessionId}.jsonl`),
    line('user', { role: 'user', content: firstMessage }, '2025-05-01T10:00:00.000Z') +
      line('assistant', { role: 'assistant', content: [{ type: 'text', text: 'ok' }] }, '2025-05-01T10:00:05.000Z'),
  );
}

test('transcripts are imported when a project is added and when Sync is pressed', async ({ page }) => {
  const dataDir = makeTempDir();
  const claudeRoot = path.join(dataDir, 'claude');
  const server = await startServer({
    dbPath: path.join(dataDir, 'agentdeck.db'),
    env: { AGENTDECK_CLAUDE_PROJECTS: claudeRoot },
  });
  try {
    const name = uniqueName('sync');
    const dir = makeProjectDir(name);
    writeClaudeTranscript(claudeRoot, dir, 'aaaa1111-from-terminal', 'Started in the terminal');

    await gotoHydrated(page, server.url + '/');
    await submitProject(page, dir);
    await page.getByRole('link', { name, exact: true }).click();
    await waitForHydration(page);
    await expect(liveIndicator(page)).toHaveText('Live');

    const sessions = sessionsList(page);
    // Imported by the sync that runs when a project is added.
    await expect(sessionLink(page, 'Started in the terminal')).toBeVisible();

    // A session started later appears when Sync is pressed, live, idle.
    writeClaudeTranscript(claudeRoot, dir, 'bbbb2222-later', 'Later terminal session');
    await page.getByRole('button', { name: 'Sync', exact: true }).click();
    await expect(page.locator('.sync-summary')).toContainText('Synced: 1 imported');
    await expect(sessionLink(page, 'Later terminal session')).toBeVisible();
    await expect(processingBadge(sessions)).toHaveCount(0);
    await expect(errorBadge(sessions)).toHaveCount(0);

    // Syncing again imports nothing twice.
    await page.getByRole('button', { name: 'Sync', exact: true }).click();
    await expect(page.locator('.sync-summary')).toContainText('Synced: 0 imported');
    await expect(sessions.getByRole('listitem')).toHaveCount(2);
  } finally {
    await server.stop();
  }
});
