// Measures the time from a state change's commit to its event arriving in
// Chromium, on the real release server and the real list page.
//
//   node end2end/bench/live-latency.mjs [sends=150]
//
// Each send of `true` to a shell session commits two transitions (sent,
// succeeded). The page's own EventSource is wrapped to timestamp arrivals;
// the commit time is the transition's `at` (same machine clock, ms).
import { chromium } from '@playwright/test';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const sends = Number(process.argv[2] ?? 150);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentdeck-bench-'));
const projectDir = path.join(dir, 'project');
fs.mkdirSync(projectDir);

const server = spawn(path.join(root, 'target/release/agentdeck'),
  ['serve', '--port', '0', '--database-url', path.join(dir, 'db.sqlite')],
  { env: { ...process.env, AGENTDECK_SITE_ROOT: path.join(root, 'target/site') }, stdio: ['ignore', 'pipe', 'inherit'] });
const url = await new Promise((resolve, reject) => {
  server.stdout.on('data', (chunk) => {
    const match = /listening on (http:\/\/\S+)/.exec(chunk.toString());
    if (match) resolve(match[1]);
  });
  server.on('exit', (code) => reject(new Error(`server exited with ${code}`)));
});

const api = async (method, route, body, form) => {
  const response = await fetch(url + route, {
    method,
    headers: { 'content-type': form ? 'application/x-www-form-urlencoded' : 'application/json', accept: 'application/json' },
    body: form ?? (body ? JSON.stringify(body) : undefined),
  });
  return response.json();
};
await api('POST', '/rpc/add_project', null, `path=${encodeURIComponent(projectDir)}`);
const session = await api('POST', '/api/projects/1/sessions', { name: 'bench', agent: 'shell' });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const page = await browser.newPage();
await page.addInitScript(() => {
  window.__arrivals = [];
  const Original = window.EventSource;
  window.EventSource = function (...args) {
    const source = new Original(...args);
    source.addEventListener('message', (event) => {
      const data = JSON.parse(event.data);
      const change = data.change?.change;
      if (change) window.__arrivals.push([change.seq, change.at, Date.now()]);
    });
    return source;
  };
  window.EventSource.prototype = Original.prototype;
});
await page.goto(`${url}/projects/1/sessions`);
await page.locator('.live-indicator', { hasText: 'Live' }).waitFor({ timeout: 5000 }).catch(async (e) => { console.error(await page.content()); throw e; });

for (let i = 0; i < sends; i++) {
  if (process.env.BENCH_DEBUG) console.error('send', i);
  await api('POST', `/api/sessions/${session.id}/messages`, { message: 'true' });
  for (;;) {
    const detail = await api('GET', `/api/sessions/${session.id}`);
    if (detail.session.state !== 'working') break;
    await new Promise((r) => setTimeout(r, 5));
  }
}
await page.waitForFunction((n) => window.__arrivals.length >= n, sends * 2, { timeout: 30_000 });
const arrivals = await page.evaluate(() => window.__arrivals);
const latencies = arrivals.map(([, at, arrived]) => arrived - at).sort((a, b) => a - b);
const pick = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
const inOrder = arrivals.every(([seq], i) => i === 0 || seq > arrivals[i - 1][0]);
console.log(JSON.stringify({
  transitions: latencies.length,
  in_seq_order: inOrder,
  median_ms: pick(0.5),
  p99_ms: pick(0.99),
  max_ms: latencies[latencies.length - 1],
}));
await browser.close();
server.kill('SIGTERM');
