// Measures the server memory each open live page costs: the release server's
// resident memory before and after `clients` SSE streams are opened (each
// following a project, as the sessions page does), then pushes changes to all
// of them and checks every client received every change.
//
//   node end2end/bench/sse-memory.mjs [clients=1000] [changes=20]
//
// Budget: at most 20 KiB of server memory per live client.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';

const clients = Number(process.argv[2] ?? 1000);
const changes = Number(process.argv[3] ?? 20);
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
const { hostname, port } = new URL(url);

/** The server's resident set size in KiB. */
function rssKiB() {
  const status = fs.readFileSync(`/proc/${server.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)[1]);
}

const post = (route, body) => fetch(url + route, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
}).then((r) => r.json());

const project = await fetch(url + '/rpc/add_project', {
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
  body: `path=${encodeURIComponent(projectDir)}`,
}).then((r) => r.json());
const session = await post(`/api/projects/${project.id}/sessions`, { name: 'bench', agent: 'shell' });

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });

function openStream(onChange) {
  return new Promise((resolve, reject) => {
    const request = http.get({ hostname, port, agent, path: `/api/events?project=${project.id}&since=0` }, (response) => {
      response.setEncoding('utf8');
      response.on('data', (text) => {
        for (const line of text.split('\n')) if (line.startsWith('id:')) onChange(Number(line.slice(3)));
      });
      resolve(request);
    });
    request.on('error', reject);
  });
}

// Warm up: one stream opened and closed, so lazily allocated pools are not counted.
(await openStream(() => {})).destroy();
await sleep(500);
const before = rssKiB();

const received = new Array(clients).fill(0);
const streams = [];
for (let i = 0; i < clients; i += 50) {
  const batch = [];
  for (let j = i; j < Math.min(i + 50, clients); j++) batch.push(openStream(() => { received[j] += 1; }));
  streams.push(...(await Promise.all(batch)));
}
await sleep(1000);
const after = rssKiB();

// Each run of `true` commits two changes (sent, succeeded).
for (let i = 0; i < changes / 2; i++) {
  await post(`/api/sessions/${session.id}/messages`, { message: 'true' });
  for (let t = 0; t < 200; t++) {
    const detail = await fetch(`${url}/api/sessions/${session.id}`).then((r) => r.json());
    if (detail.state === 'idle') break;
    await sleep(10);
  }
}
// Every stream replays the session's creation, then gets each run's two changes.
const expected = 1 + Math.floor(changes / 2) * 2;
for (let t = 0; t < 100 && received.some((n) => n < expected); t++) await sleep(50);
const complete = received.filter((n) => n >= expected).length;
const perClient = (after - before) / clients;

console.log(`clients: ${clients}`);
console.log(`server RSS: ${before} KiB before, ${after} KiB with the streams open`);
console.log(`memory per live client: ${perClient.toFixed(1)} KiB (budget 20 KiB)`);
console.log(`clients that received all ${expected} changes: ${complete} / ${clients}`);

for (const stream of streams) stream.destroy();
server.kill('SIGTERM');
fs.rmSync(dir, { recursive: true, force: true });
process.exit(complete === clients ? 0 : 1);
