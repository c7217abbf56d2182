// The `graphql-ws` client (graphql-transport-ws protocol) follows an export.

import { after, before, test } from 'node:test';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

import { startServer } from '../support/server.mjs';
import { exportThroughSubscriptions } from '../support/export_scenario.mjs';

const CONTACTS = 5;

let server;
let client;

before(async () => {
  server = await startServer({ contacts: CONTACTS });
});

after(async () => {
  await client?.dispose();
  await server?.stop();
});

test('graphql-ws follows exportUpdated to the CSV link', { timeout: 120_000 }, async () => {
  client = createClient({
    url: server.wsUrl,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${server.token}` },
    // A refused connection must fail the test, not be retried quietly.
    retryAttempts: 0,
  });
  const socket = { subscribe: (query, variables) => client.iterate({ query, variables }) };
  await exportThroughSubscriptions(server, socket, CONTACTS);
});
