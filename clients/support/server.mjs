// The real `contacts` binary for client tests: a fresh data folder on the
// embedded defaults, an admin agent and a project made with the operator's
// commands, the server on a free port, and a logged-in token.

import { execFile, spawn } from 'node:child_process';
import { access, constants, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

const clientsDir = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

/** The repository's checked-in SDL of the served schema. */
export const schemaFile = path.join(clientsDir, '..', 'schema.graphql');

/** `CONTACTS_BIN`, else the debug build in cargo's target folder. */
export function contactsBinary() {
  if (process.env.CONTACTS_BIN) return path.resolve(process.env.CONTACTS_BIN);
  const targetDir = process.env.CARGO_TARGET_DIR ?? path.join(clientsDir, '..', 'target');
  return path.resolve(targetDir, 'debug', 'contacts');
}

const ADMIN_EMAIL = 'admin@clients.test';
const ADMIN_PASSWORD = 'client-tests-password';
const STARTUP_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;

/**
 * Starts a server of its own. `contacts` seeds that many made-up contacts
 * into the project first; `env` adds or overrides settings.
 *
 * Returns { url, graphqlUrl, wsUrl, token, projectId, publicKey, email,
 * password, dataDir, graphql(query, variables, token?), log(), stop() }.
 */
export async function startServer({ contacts = 0, env = {} } = {}) {
  const binary = contactsBinary();
  await access(binary, constants.X_OK).catch(() => {
    throw new Error(`no contacts binary at ${binary}: run \`cargo build --bin contacts\` or set CONTACTS_BIN`);
  });
  const dataDir = await mkdtemp(path.join(tmpdir(), 'contacts-clients-'));
  // Built from scratch, so that the caller's DATABASE_URL, SMTP_URL,
  // S3_BUCKET or REDIS_URL cannot pull the test off the embedded defaults.
  const settings = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    DATA_DIR: dataDir,
    DATABASE_URL: `sqlite://${path.join(dataDir, 'contacts.db')}?mode=rwc`,
    LISTEN_ADDR: '127.0.0.1:0',
    LOG_FORMAT: 'json',
    RUST_LOG: 'info',
    // Idle export workers look for jobs this often; the default second
    // would only make the tests slower.
    EXPORT_POLL_MS: '100',
    ...env,
  };
  const operator = (args, extra = {}) => run(binary, args, { env: { ...settings, ...extra } });

  let projectId;
  let publicKey;
  try {
    // The password goes through the environment, as an operator's should.
    await operator(['create-agent', '--email', ADMIN_EMAIL, '--name', 'Client tests'], {
      CONTACTS_AGENT_PASSWORD: ADMIN_PASSWORD,
    });
    const created = await operator(['create-project', '--name', 'Client tests', '--owner', ADMIN_EMAIL]);
    projectId = created.stdout.match(/^project (\S+) created$/m)?.[1];
    publicKey = created.stdout.match(/^public key: (\S+)$/m)?.[1];
    if (!projectId || !publicKey) {
      throw new Error(`create-project printed no project id and key:\n${created.stdout}`);
    }
    if (contacts > 0) {
      await operator(['seed', '--project', projectId, '--contacts', String(contacts)]);
    }
  } catch (error) {
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }

  // The server's log lines, for the messages of failed checks.
  const logLines = [];
  const log = () => logLines.join('\n');
  const child = spawn(binary, ['serve'], { env: settings, stdio: ['ignore', 'pipe', 'pipe'] });
  // Whatever happens to the test process, the server does not outlive it.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', (error) => resolve({ code: null, signal: null, error }));
  });
  createInterface({ input: child.stderr }).on('line', (line) => logLines.push(line));

  const address = await new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the server did not start within ${STARTUP_TIMEOUT_MS} ms:\n${log()}`)),
      STARTUP_TIMEOUT_MS,
    );
    exited.then(({ code, signal, error }) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${error ?? code ?? signal}) before listening:\n${log()}`));
    });
    createInterface({ input: child.stdout }).on('line', (line) => {
      logLines.push(line);
      const bound = listeningAddress(line);
      if (bound) {
        clearTimeout(timer);
        resolve(bound);
      }
    });
  }).catch(async (error) => {
    child.kill('SIGKILL');
    await exited;
    process.removeListener('exit', killOnExit);
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  });

  const url = `http://${address}`;
  const graphqlUrl = `${url}/graphql`;
  const server = {
    url,
    graphqlUrl,
    wsUrl: `ws://${address}/graphql`,
    projectId,
    publicKey,
    email: ADMIN_EMAIL,
    password: ADMIN_PASSWORD,
    dataDir,
    token: undefined,
    log,
    /** One POST, as any client sends it; the admin's token unless told. */
    async graphql(query, variables = {}, token = server.token) {
      const response = await fetch(graphqlUrl, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: JSON.stringify({ query, variables }),
      });
      const body = await response.json();
      return { status: response.status, body };
    },
    /** SIGTERM, then SIGKILL if it does not exit in time; the data folder goes too. */
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
        await exited;
        clearTimeout(timer);
      }
      process.removeListener('exit', killOnExit);
      await rm(dataDir, { recursive: true, force: true });
      return exited;
    },
  };

  try {
    const login = await server.graphql(
      'mutation login($email: String!, $password: String!) { login(email: $email, password: $password) { token } }',
      { email: ADMIN_EMAIL, password: ADMIN_PASSWORD },
      null,
    );
    server.token = login.body?.data?.login?.token;
    if (!server.token) throw new Error(`login failed: ${JSON.stringify(login.body)}`);
  } catch (error) {
    await server.stop();
    throw error;
  }
  return server;
}

/** The bound address from the server's JSON "listening" log line, if it is that line. */
function listeningAddress(line) {
  try {
    const entry = JSON.parse(line);
    return entry?.fields?.message === 'contacts service listening' ? entry.fields.address : undefined;
  } catch {
    return undefined;
  }
}
