// The legacy `subscriptions-transport-ws` client (the old graphql-ws
// protocol) follows an export.

import { after, before, test } from 'node:test';
import subscriptionsTransportWs from 'subscriptions-transport-ws';
import WebSocket from 'ws';

import { startServer } from '../support/server.mjs';
import { exportThroughSubscriptions } from '../support/export_scenario.mjs';

const { SubscriptionClient } = subscriptionsTransportWs;
const CONTACTS = 4;

let server;
let client;

before(async () => {
  server = await startServer({ contacts: CONTACTS });
});

after(async () => {
  client?.close();
  await server?.stop();
});

/**
 * The client's observable as an async iterator that subscribes at once,
 * so that events arriving before the first `next()` wait in a queue.
 */
function iterate(observable) {
  const queue = [];
  let wake = () => {};
  const push = (item) => {
    queue.push(item);
    wake();
  };
  const subscription = observable.subscribe({
    next: (value) => push({ value }),
    error: (error) => push({ error }),
    complete: () => push({ done: true }),
  });
  return {
    async next() {
      while (queue.length === 0) await new Promise((resolve) => (wake = resolve));
      const item = queue.shift();
      if (item.error) throw item.error instanceof Error ? item.error : new Error(JSON.stringify(item.error));
      return item.done ? { done: true, value: undefined } : { done: false, value: item.value };
    },
    async return() {
      subscription.unsubscribe();
      return { done: true, value: undefined };
    },
  };
}

test('subscriptions-transport-ws follows exportUpdated to the CSV link', { timeout: 120_000 }, async () => {
  client = new SubscriptionClient(
    server.wsUrl,
    {
      connectionParams: { authorization: `Bearer ${server.token}` },
      // A refused connection must fail the test, not be retried quietly.
      reconnect: false,
    },
    WebSocket,
  );
  const socket = { subscribe: (query, variables) => iterate(client.request({ query, variables })) };
  await exportThroughSubscriptions(server, socket, CONTACTS);
});
