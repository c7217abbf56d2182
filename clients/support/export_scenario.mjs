// An export as the agents' app follows it: notifications subscribed before
// the request, the job followed on `exportUpdated` until it completes, then
// the link fetched. Shared by the websocket clients, each behind the same
// small `subscribe(query, variables)` that yields execution results.

import assert from 'node:assert/strict';

export const NOTIFICATIONS = `subscription notifications {
  notifications { kind title exportJob { id status downloadUrl } }
}`;

export const ME = 'query me { me { id email } }';

export const EXPORT_CONTACTS = `mutation exportContacts($projectId: ID!, $from: String!, $to: String!) {
  exportContacts(projectId: $projectId, from: $from, to: $to) { id status }
}`;

export const EXPORT_UPDATED = `subscription exportUpdated($jobId: ID!) {
  exportUpdated(jobId: $jobId) { id status rowsWritten rowsTotal progress downloadUrl error }
}`;

const FINAL_STATUSES = ['COMPLETED', 'FAILED', 'CANCELLED'];
const EVENT_TIMEOUT_MS = 30_000;

/** The iterator's next result, or a failure naming what never came. */
export async function nextWithin(iterator, what, ms = EVENT_TIMEOUT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([iterator.next(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function dataOf(result, what) {
  assert.equal(result.errors, undefined, `${what} answered errors: ${JSON.stringify(result.errors)}`);
  assert.ok(result.data, `${what} answered no data: ${JSON.stringify(result)}`);
  return result.data;
}

/**
 * Runs the export through `socket` against `server` (from startServer,
 * with `contactCount` seeded contacts) and checks the downloaded CSV.
 */
export async function exportThroughSubscriptions(server, socket, contactCount) {
  const notifications = socket.subscribe(NOTIFICATIONS);

  // A query on the same socket proves that connection_init carried a live
  // token. The server takes one connection's messages in order and starts
  // each operation's task after that message's token check, so the
  // subscription's task is running before this query's even begins.
  const me = await nextWithin(socket.subscribe(ME), 'answer to `me` over the socket');
  assert.equal(dataOf(me.value, 'me').me.email, server.email);

  const requested = await server.graphql(EXPORT_CONTACTS, {
    projectId: server.projectId,
    from: '2000-01-01',
    to: '2100-01-01',
  });
  assert.equal(requested.status, 200, JSON.stringify(requested.body));
  const job = dataOf(requested.body, 'exportContacts').exportContacts;
  assert.ok(['QUEUED', 'RUNNING', 'COMPLETED'].includes(job.status), `new job is ${job.status}`);

  // The subscription starts with the job's state now, so it may begin
  // after the request without missing the end.
  const updates = socket.subscribe(EXPORT_UPDATED, { jobId: job.id });
  const seen = [];
  for (;;) {
    const update = await nextWithin(updates, `exportUpdated event after ${JSON.stringify(seen)}`);
    if (update.done) break;
    const state = dataOf(update.value, 'exportUpdated').exportUpdated;
    assert.equal(state.id, job.id);
    assert.ok(!seen.some((earlier) => FINAL_STATUSES.includes(earlier.status)), 'an event after the final state');
    seen.push(state);
  }
  const last = seen.at(-1);
  assert.ok(last, 'exportUpdated ended without an event');
  assert.equal(last.status, 'COMPLETED', `export ended as ${JSON.stringify(last)}`);
  assert.equal(last.error, null);
  assert.equal(last.rowsWritten, contactCount);
  assert.equal(last.rowsTotal, contactCount);
  assert.equal(last.progress, 1);
  assert.match(last.downloadUrl ?? '', /^http:\/\//, 'the completed job carries its link');

  const notification = await nextWithin(notifications, 'notification of the finished export');
  assert.equal(notification.done, false, 'the notifications stream ended');
  const delivered = dataOf(notification.value, 'notifications').notifications;
  assert.equal(delivered.kind, 'EXPORT_COMPLETED');
  assert.equal(delivered.exportJob.id, job.id);
  assert.equal(delivered.exportJob.status, 'COMPLETED');
  await notifications.return?.();

  for (const link of [last.downloadUrl, delivered.exportJob.downloadUrl]) {
    const download = await fetch(link);
    assert.equal(download.status, 200, `GET ${link}`);
    assert.match(download.headers.get('content-type') ?? '', /^text\/csv/);
    const lines = (await download.text()).trimEnd().split(/\r?\n/);
    assert.match(lines[0], /^id,name,email,phone,company,/, 'the CSV starts with its header row');
    assert.equal(lines.length, contactCount + 1, 'a header row and one row per contact');
  }
}
