// Measures the server memory each open live page costs, against a bare axum
// SSE broadcast server measured in the same run (server/examples/bare_sse.rs):
// resident memory before and after `clients` streams are opened, then
// `changes` events pushed to all of them, checking every client got each one.
//
//   cargo build --release -p server --example bare_sse
//   node end2end/bench/sse-memory.mjs [clients=1000] [changes=20]
//
// agentdeck's streams follow a project, as the sessions page does (replay
// from the database, then live). Budget: at most 20 KiB per live client.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';

const clients = Number(process.argv[2] ?? 1000);
const changes = Number(process.argv[3] ?? 20);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function start(binary, args, env = {}) {
  const server = spawn(binary, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'ignore'] });
  const url = await new Promise((resolve, reject) => {
    server.stdout.on('data', (chunk) => {
      const match = /listening on (http:\/\/\S+)/.exec(chunk.toString());
      if (match) resolve(match[1]);
    });
    server.on('exit', (code) => reject(new Error(`${binary} exited with ${code}`)));
  });
  const rssKiB = () => Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${server.pid}/status`, 'utf8'))[1]);
  return { server, url, rssKiB };
}

/** agentdeck on a fresh database, with a project and a shell session. */
async function agentdeck() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentdeck-bench-'));
  fs.mkdirSync(path.join(dir, 'project'));
  const it = await start(path.join(root, 'target/release/agentdeck'),
    // Every stream comes from this one address: lift the per-client limit.
    ['serve', '--port', '0', '--database-url', path.join(dir, 'db.sqlite'),
      '--max-streams', String(clients + 10), '--max-streams-per-client', String(clients + 10)],
    { AGENTDECK_SITE_ROOT: path.join(root, 'target/site'), RUST_LOG: 'warn' });
  const json = (route, body) => fetch(it.url + route, {
    method: body ? 'POST' : 'GET',
    headers: { 'content-type': 'application/json' },
    body: body && JSON.stringify(body),
  }).then((r) => r.json());
  const project = await fetch(it.url + '/rpc/add_project', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: `path=${encodeURIComponent(path.join(dir, 'project'))}`,
  }).then((r) => r.json());
  const session = await json(`/api/projects/${project.id}/sessions`, { name: 'bench', agent: 'shell' });
  return {
    ...it,
    name: 'agentdeck',
    streamPath: `/api/events?project=${project.id}&since=0`,
    // The session's creation is replayed to every stream first.
    replayed: 1,
    // Each run of `true` commits two changes (sent, succeeded).
    async publish(count) {
      for (let i = 0; i < count / 2; i++) {
        await json(`/api/sessions/${session.id}/messages`, { message: 'true' });
        for (let t = 0; t < 500 && (await json(`/api/sessions/${session.id}`)).state !== 'idle'; t++) await sleep(5);
      }
      return Math.floor(count / 2) * 2;
    },
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

/** The bare baseline: axum + tokio broadcast, nothing else. */
async function bare() {
  const binary = path.join(root, 'target/release/examples/bare_sse');
  if (!fs.existsSync(binary)) return null;
  const it = await start(binary, []);
  return {
    ...it,
    name: 'bare axum SSE',
    streamPath: '/events',
    replayed: 0,
    async publish(count) {
      for (let i = 0; i < count; i++) {
        await fetch(it.url + '/publish', { method: 'POST', body: JSON.stringify({ seq: i, state: 'working' }) });
        await sleep(5);
      }
      return count;
    },
    cleanup: () => {},
  };
}

async function measure(target) {
  const { hostname, port } = new URL(target.url);
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  const openStream = (onEvent) => new Promise((resolve, reject) => {
    const request = http.get({ hostname, port, agent, path: target.streamPath }, (response) => {
      response.setEncoding('utf8');
      response.on('data', (text) => {
        for (const line of text.split('\n')) if (line.startsWith('data:')) onEvent();
      });
      resolve(request);
    });
    request.on('error', reject);
  });

  // Warm up: one stream opened and closed, so lazily made pools are not counted.
  (await openStream(() => {})).destroy();
  await sleep(500);
  const before = target.rssKiB();

  // Open in batches, noting memory at each quarter: the slope from the first
  // to the last quarter is what one more client costs.
  const received = new Array(clients).fill(0);
  const streams = [];
  const marks = [];
  for (let i = 0; i < clients; i += 50) {
    const batch = [];
    for (let j = i; j < Math.min(i + 50, clients); j++) batch.push(openStream(() => { received[j] += 1; }));
    streams.push(...(await Promise.all(batch)));
    if (streams.length % Math.max(1, Math.floor(clients / 4)) === 0) {
      await sleep(300);
      marks.push([streams.length, target.rssKiB()]);
    }
  }
  await sleep(1000);
  const after = target.rssKiB();

  const expected = target.replayed + (await target.publish(changes));
  for (let t = 0; t < 200 && received.some((n) => n < expected); t++) await sleep(50);
  const complete = received.filter((n) => n >= expected).length;
  const [[n1, m1], [n4, m4]] = [marks[0], marks[marks.length - 1]];

  for (const stream of streams) stream.destroy();
  target.server.kill('SIGTERM');
  await new Promise((resolve) => target.server.on('exit', resolve));
  target.cleanup();
  return { average: (after - before) / clients, marginal: (m4 - m1) / (n4 - n1), before, after, complete, expected };
}

const results = [];
for (const make of [bare, agentdeck]) {
  const target = await make();
  if (!target) {
    console.log('(bare baseline not built: cargo build --release -p server --example bare_sse)');
    continue;
  }
  const r = await measure(target);
  results.push([target.name, r]);
  console.log(`${target.name}: ${clients} clients, RSS ${r.before} → ${r.after} KiB; ` +
    `${r.average.toFixed(1)} KiB per client (marginal ${r.marginal.toFixed(1)}); ` +
    `${r.complete}/${clients} got all ${r.expected} events`);
}
const ours = results.find(([name]) => name === 'agentdeck')[1];
const base = results.find(([name]) => name !== 'agentdeck')?.[1];
console.log(`agentdeck memory per live client: ${ours.average.toFixed(1)} KiB (budget 20 KiB)` +
  (base ? `, ${(ours.average / base.average).toFixed(2)}× the bare baseline` : ''));
process.exit(results.every(([, r]) => r.complete === clients) ? 0 : 1);
