// The playground as a person uses it: opened in headless Chromium that can
// reach nothing but this server, it loads, fetches the schema, runs `me`
// with the Authorization header typed into its headers editor, and shows a
// subscription event pushed over its websocket.

import assert from 'node:assert/strict';
import { access, constants } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';

import { startServer } from '../support/server.mjs';
import { EXPORT_CONTACTS } from '../support/export_scenario.mjs';

/** Debian's `chromium` package, unless `CHROMIUM_BIN` names another. */
const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
const STEP_TIMEOUT_MS = 30_000;

let server;
let browser;

before(async () => {
  await access(CHROMIUM, constants.X_OK).catch(() => {
    throw new Error(`no Chromium at ${CHROMIUM}: install Debian's \`chromium\` package or set CHROMIUM_BIN`);
  });
  server = await startServer({ contacts: 3 });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
      // No name resolves but the server's address: the page has no network
      // beyond it, as in an offline office or behind a strict proxy.
      '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1',
    ],
  });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** The text of the CodeMirror editor under `selector`, read in the page. */
function editorText(page, selector) {
  return page.evaluate((selected) => document.querySelector(selected)?.CodeMirror?.getValue() ?? null, selector);
}

/** Replaces an editor's text as a person would: click, select all, type. */
async function typeInto(page, selector, text) {
  await page.click(selector);
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  // insertText, not type(): the editor would close each bracket typed.
  await page.keyboard.insertText(text);
  assert.equal(await editorText(page, selector), text, `the editor ${selector} holds what was typed`);
}

/** Waits until the result pane's JSON satisfies `check`, and returns it. */
async function resultWhere(page, what, check) {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  let shown = null;
  while (Date.now() < deadline) {
    shown = await editorText(page, RESULT);
    try {
      const parsed = JSON.parse(shown);
      if (check(parsed)) return parsed;
    } catch {
      // Empty, or still being written.
    }
    await page.waitForTimeout(100);
  }
  throw new Error(`the result pane never showed ${what}; it shows: ${shown}\n${server.log()}`);
}

const QUERY_EDITOR = '.graphiql-query-editor .CodeMirror';
const HEADERS_EDITOR = '.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror';
const RESULT = '.result-window .CodeMirror';

test('the playground works offline: schema, a query with a header, a subscription event', { timeout: 120_000 }, async () => {
  const context = await browser.newContext();
  // Anything the page asks of another origin is refused and remembered.
  const foreign = [];
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith(`${server.url}/`)) return route.continue();
    foreign.push(url);
    return route.abort('blockedbyclient');
  });
  const page = await context.newPage();
  // Console errors include Content-Security-Policy refusals and failed loads.
  const problems = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()} (${message.location().url})`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  const sockets = [];
  page.on('websocket', (socket) => sockets.push(socket));

  const introspection = page.waitForResponse(
    (response) => response.url() === server.graphqlUrl && (response.request().postData() ?? '').includes('__schema'),
    { timeout: STEP_TIMEOUT_MS },
  );
  const loaded = await page.goto(`${server.url}/graphql`);
  assert.equal(loaded.status(), 200);
  assert.match(loaded.headers()['content-security-policy'] ?? '', /script-src 'self'/);
  await page.waitForSelector('.graphiql-container', { timeout: STEP_TIMEOUT_MS });

  // The schema: GraphiQL's start-up introspection succeeds, and the docs
  // explorer shows the root query type's fields.
  const schema = await introspection;
  assert.equal(schema.status(), 200);
  const schemaBody = await schema.json();
  assert.equal(schemaBody.errors, undefined, JSON.stringify(schemaBody.errors));
  assert.equal(schemaBody.data.__schema.queryType.name, 'QueryRoot');
  await page.click('button[aria-label="Show Documentation Explorer"]');
  await page.click('.graphiql-doc-explorer a:has-text("QueryRoot")', { timeout: STEP_TIMEOUT_MS });
  await page.waitForSelector('.graphiql-doc-explorer-field-name:text-is("me")', { timeout: STEP_TIMEOUT_MS });

  // `me` with the token typed into the headers editor.
  await typeInto(page, HEADERS_EDITOR, JSON.stringify({ Authorization: `Bearer ${server.token}` }, null, 2));
  await typeInto(page, QUERY_EDITOR, 'query me {\n  me { email }\n}');
  await page.click('.graphiql-execute-button');
  const me = await resultWhere(page, "the agent's email from `me`", (shown) => shown?.data?.me?.email);
  assert.equal(me.data.me.email, server.email);
  assert.equal(me.errors, undefined);

  // A subscription: the page opens its websocket with the header as the
  // connection_init payload, and shows the event an export pushes.
  await typeInto(page, QUERY_EDITOR, 'subscription notifications {\n  notifications { kind exportJob { id status } }\n}');
  const subscribed = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the page sent no subscribe message')), STEP_TIMEOUT_MS);
    const watch = (socket) =>
      socket.on('framesent', ({ payload }) => {
        if (String(payload).includes('"subscribe"')) {
          clearTimeout(timer);
          resolve(socket);
        }
      });
    sockets.forEach(watch);
    page.on('websocket', watch);
  });
  await page.click('.graphiql-execute-button');
  const socket = await subscribed;
  assert.equal(socket.url(), server.wsUrl);

  // The job is queued now and picked up by a worker's next poll, so its
  // notification follows the subscribe message already sent.
  const requested = await server.graphql(EXPORT_CONTACTS, {
    projectId: server.projectId,
    from: '2000-01-01',
    to: '2100-01-01',
  });
  const jobId = requested.body?.data?.exportContacts?.id;
  assert.ok(jobId, JSON.stringify(requested.body));
  const event = await resultWhere(page, 'the export notification', (shown) => shown?.data?.notifications);
  assert.equal(event.data.notifications.kind, 'EXPORT_COMPLETED');
  assert.deepEqual(event.data.notifications.exportJob, { id: jobId, status: 'COMPLETED' });

  // The headers survive a reload of the tab, and nothing went elsewhere.
  await page.reload();
  await page.waitForSelector(HEADERS_EDITOR, { timeout: STEP_TIMEOUT_MS });
  assert.match((await editorText(page, HEADERS_EDITOR)) ?? '', new RegExp(server.token));
  assert.deepEqual(foreign, [], 'requests to other origins');
  assert.deepEqual(problems, [], 'errors in the page');
  await context.close();
});
