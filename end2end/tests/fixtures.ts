import { test as base, expect, type Page } from '@playwright/test';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** The release binary that `cargo leptos build --release` produces. */
export const AGENTDECK_BIN =
  process.env.AGENTDECK_BIN || path.resolve(__dirname, '../../target/release/agentdeck');

/** The built site (pkg/ with the JS, WASM and CSS). */
export const AGENTDECK_SITE_ROOT =
  process.env.AGENTDECK_SITE_ROOT || path.resolve(__dirname, '../../target/site');

const READY_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 5_000;
/** Keep at most this much of a server's stderr for error messages. */
const STDERR_KEEP_CHARS = 64 * 1024;
/** Keep at most this much of a server's stdout (it prints a few lines at start). */
const STDOUT_KEEP_CHARS = 64 * 1024;
const READY_LINE = /agentdeck listening on (http:\/\/\S+)/;

export interface RunningServer {
  /** Base URL, e.g. http://127.0.0.1:41234 (no trailing slash). */
  url: string;
  /** The SQLite file the server uses (with `databaseUrl`, that URL). */
  dbPath: string;
  /** The directory holding dbPath. */
  dataDir: string;
  process: ChildProcess;
  /** Everything the server wrote to stderr so far (the tail, if long). */
  stderr(): string;
  /**
   * Everything the server wrote to stdout so far (the tail, if long): the
   * "listening" line, and e.g. the login URL of a generated token.
   */
  stdout(): string;
  /** Waits until stdout matches `pattern` (at most `timeoutMs`) and returns the match. */
  waitForStdout(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /** SIGTERM, wait for exit; SIGKILL if still running after 5 s. */
  stop(): Promise<void>;
}

// Servers still running when this worker exits are killed, so a crashed test
// run never leaves an agentdeck process behind.
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** A fresh empty directory under the system temp dir (its real path). */
export function makeTempDir(prefix = 'agentdeck-e2e-'): string {
  return fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), prefix)));
}

export interface StartOptions {
  dbPath?: string;
  /**
   * A PostgreSQL URL to pass as `--database-url` instead of a SQLite file.
   * The server still gets a new temp data dir, and XDG_DATA_HOME points
   * into it (where a PostgreSQL server keeps its token), unless `env` sets it.
   */
  databaseUrl?: string;
  port?: number;
  env?: Record<string, string>;
  /** More arguments after `serve …`, e.g. `['--token', 'T']`. */
  args?: string[];
}

/**
 * Starts `agentdeck serve --port <port> --database-url <dbPath> [args…]` and
 * resolves once it prints its URL. Without `dbPath`, the database is a new
 * file in a new temp directory. Without `port` (or with 0), the server picks
 * a free port; pass a stopped server's port to restart "the same" server.
 */
export async function startServer(opts: StartOptions = {}): Promise<RunningServer> {
  if (!fs.existsSync(AGENTDECK_BIN)) {
    throw new Error(
      `agentdeck binary not found at ${AGENTDECK_BIN}: build it with ` +
        '`cargo leptos build --release` at the workspace root, or set AGENTDECK_BIN',
    );
  }
  const ownsDataDir = !opts.dbPath;
  const dataDir = opts.dbPath ? path.dirname(path.resolve(opts.dbPath)) : makeTempDir();
  const dbPath =
    opts.databaseUrl ?? (opts.dbPath ? path.resolve(opts.dbPath) : path.join(dataDir, 'agentdeck.db'));

  // Transcript folders and the agents' settings default to empty ones in
  // the data dir, so a test server never reads the machine's real
  // ~/.claude or ~/.codex.
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    AGENTDECK_CLAUDE_PROJECTS: path.join(dataDir, 'claude-projects'),
    AGENTDECK_CODEX_SESSIONS: path.join(dataDir, 'codex-sessions'),
    CLAUDE_CONFIG_DIR: path.join(dataDir, 'claude-config'),
    CODEX_HOME: path.join(dataDir, 'codex-home'),
    ...(opts.databaseUrl ? { XDG_DATA_HOME: path.join(dataDir, 'data') } : {}),
    ...opts.env,
  };
  if (!env.AGENTDECK_SITE_ROOT) env.AGENTDECK_SITE_ROOT = AGENTDECK_SITE_ROOT;

  const args = [
    'serve',
    '--port',
    String(opts.port ?? 0),
    '--database-url',
    dbPath,
    ...(opts.args ?? []),
  ];
  const child = spawn(AGENTDECK_BIN, args, {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);

  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    stderr += chunk;
    if (stderr.length > STDERR_KEEP_CHARS) stderr = stderr.slice(-STDERR_KEEP_CHARS);
  });

  let exited = child.exitCode !== null || child.signalCode !== null;
  const exitPromise = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      running.delete(child);
      resolve();
    });
  });

  let stdout = '';
  child.stdout!.setEncoding('utf8');
  // Keep reading stdout for the server's whole life so its pipe never fills.
  child.stdout!.on('data', (chunk: string) => {
    stdout += chunk;
    if (stdout.length > STDOUT_KEEP_CHARS) stdout = stdout.slice(-STDOUT_KEEP_CHARS);
  });

  const ready = new Promise<string>((resolve, reject) => {
    let settled = false;
    const finish = (err: Error | null, value?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(value!);
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(
        new Error(
          `agentdeck did not print its URL within ${READY_TIMEOUT_MS / 1000} s.\n` +
            `stdout:\n${stdout}\nstderr:\n${stderr}`,
        ),
      );
    }, READY_TIMEOUT_MS);
    child.stdout!.on('data', () => {
      if (settled) return;
      const match = READY_LINE.exec(stdout);
      if (match) finish(null, match[1].replace(/\/+$/, ''));
    });
    child.once('error', (err) => finish(new Error(`cannot start ${AGENTDECK_BIN}: ${err.message}`)));
    child.once('exit', (code, signal) => {
      // Let the last stderr chunks arrive before reporting.
      setImmediate(() =>
        finish(
          new Error(
            `agentdeck exited before it was ready (code ${code}, signal ${signal}).\n` +
              `stdout:\n${stdout}\nstderr:\n${stderr}`,
          ),
        ),
      );
    });
  });

  let url: string;
  try {
    url = await ready;
  } catch (err) {
    if (ownsDataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }

  const stop = async (): Promise<void> => {
    if (exited) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (!exited) child.kill('SIGKILL');
    }, STOP_GRACE_MS);
    await exitPromise;
    clearTimeout(timer);
  };

  const waitForStdout = (pattern: RegExp, timeoutMs = 10_000): Promise<RegExpExecArray> =>
    new Promise((resolve, reject) => {
      const check = (): boolean => {
        const match = pattern.exec(stdout);
        if (!match) return false;
        cleanup();
        resolve(match);
        return true;
      };
      const fail = (why: string) => {
        cleanup();
        reject(
          new Error(`agentdeck's stdout did not match ${pattern}: ${why}.\nstdout:\n${stdout}\nstderr:\n${stderr}`),
        );
      };
      const onExit = () => fail('the server exited');
      const timer = setTimeout(() => fail(`not within ${timeoutMs / 1000} s`), timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        child.stdout!.off('data', check);
        child.off('exit', onExit);
      };
      child.stdout!.on('data', check);
      child.once('exit', onExit);
      if (!check() && exited) onExit();
    });

  return {
    url,
    dbPath,
    dataDir,
    process: child,
    stderr: () => stderr,
    stdout: () => stdout,
    waitForStdout,
    stop,
  };
}

/**
 * Runs `body` with `start`, which starts a server on one database file in a
 * new temp directory (each call a new server on the same file: restart "the
 * same" server by stopping one and starting another, with the stopped one's
 * `port` to keep its URL). Afterwards every server started is stopped, in
 * order, and the directory is removed.
 */
export async function withOneDatabase(
  body: (start: (opts?: { port?: number }) => Promise<RunningServer>) => Promise<void>,
): Promise<void> {
  const dataDir = makeTempDir();
  const dbPath = path.join(dataDir, 'agentdeck.db');
  const started: RunningServer[] = [];
  try {
    await body(async (opts = {}) => {
      const server = await startServer({ dbPath, ...opts });
      started.push(server);
      return server;
    });
  } finally {
    for (const server of started) await server.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

// Project directories made by this worker, removed when the worker ends.
const madeDirs: string[] = [];

/**
 * Creates a directory named `name` inside a new temp directory and returns
 * its real path, ready to be added as a project (its basename is `name`).
 */
export function makeProjectDir(name: string): string {
  const parent = makeTempDir('agentdeck-e2e-proj-');
  madeDirs.push(parent);
  const dir = path.join(parent, name);
  fs.mkdirSync(dir);
  return fs.realpathSync(dir);
}

let counter = 0;
/** A name no other test in this run uses: `${prefix}-<random>`. */
export function uniqueName(prefix: string): string {
  counter += 1;
  const random = Math.random().toString(36).slice(2, 8);
  return `${prefix}-${process.pid.toString(36)}${counter}${random}`;
}

/** Navigates to `url` and waits until the page's islands are hydrated. */
export async function gotoHydrated(page: Page, url: string) {
  const response = await page.goto(url);
  await waitForHydration(page);
  return response;
}

/** See {@link gotoHydrated}; for pages reached by clicking a link. */
export async function waitForHydration(page: Page) {
  // Each island sets data-hydrated="true" from an effect, which only runs in the browser.
  await page.locator('[data-hydrated="true"]').first().waitFor();
}

export const test = base.extend<{}, { server: RunningServer }>({
  // One fresh server and database per worker.
  server: [
    async ({}, use) => {
      const server = await startServer();
      try {
        await use(server);
      } finally {
        await server.stop();
        fs.rmSync(server.dataDir, { recursive: true, force: true });
        for (const dir of madeDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
      }
    },
    { scope: 'worker', timeout: 60_000 },
  ],
  baseURL: async ({ server }, use) => {
    await use(server.url);
  },
});

export { expect };
