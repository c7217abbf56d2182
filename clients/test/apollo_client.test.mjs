// Apollo Client with a normalised cache pages the contacts list and reads
// failing queries without a cache complaint.

import assert from 'node:assert/strict';
import { format } from 'node:util';
import { after, before, beforeEach, afterEach, test } from 'node:test';
import { ApolloClient, HttpLink, InMemoryCache, gql } from '@apollo/client/core/index.js';
import { relayStylePagination } from '@apollo/client/utilities/index.js';
import { loadDevMessages, loadErrorMessages } from '@apollo/client/dev/index.js';

import { startServer } from '../support/server.mjs';

const CONTACTS = 7;
const PAGE_SIZE = 3;
const MISSING_CONTACT_ID = '00000000-0000-7000-8000-000000000000';

const CONTACTS_PAGE = gql`
  query contacts($projectId: ID!, $first: Int!, $after: String) {
    contacts(projectId: $projectId, first: $first, after: $after) {
      edges {
        cursor
        node { id name email createdAt }
      }
      pageInfo { hasNextPage endCursor }
    }
  }
`;

const CONTACT = gql`
  query contact($id: ID!) {
    me { id email }
    contact(id: $id) { id name email }
  }
`;

// Apollo's warnings in words rather than as numbered links.
loadDevMessages();
loadErrorMessages();

let server;

before(async () => {
  server = await startServer({ contacts: CONTACTS });
});

after(async () => {
  await server?.stop();
});

// Apollo reports cache trouble ("Missing field ...", merge warnings) on
// the console instead of throwing: any such line fails the test.
let consoleLines;
const originalConsole = { warn: console.warn, error: console.error };

beforeEach(() => {
  consoleLines = [];
  for (const level of Object.keys(originalConsole)) {
    console[level] = (...args) => consoleLines.push(`console.${level}: ${format(...args)}`);
  }
});

afterEach(() => {
  Object.assign(console, originalConsole);
});

function newClient() {
  return new ApolloClient({
    link: new HttpLink({
      uri: server.graphqlUrl,
      headers: { authorization: `Bearer ${server.token}` },
    }),
    cache: new InMemoryCache({
      typePolicies: {
        // The served schema names its query root `QueryRoot`.
        QueryRoot: {
          queryType: true,
          fields: { contacts: relayStylePagination(['projectId', 'filter', 'orderBy']) },
        },
      },
    }),
  });
}

test('the console capture sees what Apollo reports about the cache', () => {
  const cache = new InMemoryCache();
  cache.writeQuery({
    query: gql`query me { me { id email } }`,
    data: { me: { __typename: 'Agent', id: '1' } },
  });
  assert.ok(
    consoleLines.some((line) => line.includes('Missing field')),
    `a result without a selected field is reported: ${JSON.stringify(consoleLines)}`,
  );
});

test('Apollo Client pages the contacts into one normalised list', { timeout: 60_000 }, async () => {
  const client = newClient();
  const variables = { projectId: server.projectId, first: PAGE_SIZE };
  const contacts = client.watchQuery({ query: CONTACTS_PAGE, variables });
  let updates;
  const firstPage = new Promise((resolve, reject) => {
    updates = contacts.subscribe({
      next: (result) => !result.loading && resolve(result),
      error: reject,
    });
  });
  try {
    let page = await firstPage;
    assert.equal(page.error, undefined);
    assert.equal(page.data.contacts.edges.length, PAGE_SIZE);
    let pages = 1;
    while (page.data.contacts.pageInfo.hasNextPage) {
      await contacts.fetchMore({ variables: { after: page.data.contacts.pageInfo.endCursor } });
      page = contacts.getCurrentResult();
      pages += 1;
      assert.ok(pages <= CONTACTS, 'the pages never end');
    }
    assert.equal(pages, Math.ceil(CONTACTS / PAGE_SIZE));

    const merged = client.readQuery({ query: CONTACTS_PAGE, variables });
    const pagedIds = merged.contacts.edges.map((edge) => edge.node.id);
    const direct = await server.graphql(
      'query contacts($projectId: ID!) { contacts(projectId: $projectId, first: 100) { edges { node { id } } } }',
      { projectId: server.projectId },
    );
    const allIds = direct.body.data.contacts.edges.map((edge) => edge.node.id);
    assert.equal(allIds.length, CONTACTS);
    assert.deepEqual(pagedIds, allIds, 'the pages, merged, are the list in order');
    assert.equal(merged.contacts.pageInfo.hasNextPage, false);

    const stored = client.cache.extract();
    for (const id of allIds) {
      assert.ok(stored[`Contact:${id}`], `Contact:${id} is normalised`);
    }
    assert.deepEqual(consoleLines, []);
  } finally {
    updates.unsubscribe();
    client.stop();
  }
});

test('field errors with errorPolicy all leave the cache sound', { timeout: 60_000 }, async () => {
  const client = newClient();
  try {
    const listed = await client.query({
      query: CONTACTS_PAGE,
      variables: { projectId: server.projectId, first: PAGE_SIZE },
    });
    const firstPage = listed.data.contacts.edges.map((edge) => edge.node.id);

    // The root field is non-null, so its error nulls `data` (spec 6.4.4).
    const missing = await client.query({
      query: CONTACT,
      variables: { id: MISSING_CONTACT_ID },
      errorPolicy: 'all',
      fetchPolicy: 'network-only',
    });
    assert.equal(missing.data ?? null, null);
    assert.deepEqual(
      missing.errors.map((error) => [error.path?.join('.'), error.extensions?.code]),
      [['contact', 'NOT_FOUND']],
    );

    // An out-of-range page of the cached connection is refused before it
    // runs (a request error: no path, the argument named); the pages
    // already merged stay as they were.
    const tooLarge = await client.query({
      query: CONTACTS_PAGE,
      variables: { projectId: server.projectId, first: 101 },
      errorPolicy: 'all',
      fetchPolicy: 'network-only',
    });
    assert.equal(tooLarge.data ?? null, null);
    assert.deepEqual(
      tooLarge.errors.map((error) => [error.path, error.extensions?.code, error.extensions?.field]),
      [[undefined, 'BAD_USER_INPUT', 'first']],
    );
    const cached = client.readQuery({
      query: CONTACTS_PAGE,
      variables: { projectId: server.projectId, first: PAGE_SIZE },
    });
    assert.deepEqual(
      cached.contacts.edges.map((edge) => edge.node.id),
      firstPage,
    );

    // The same contact, found: the failed read left nothing behind that
    // stops the cache from answering it afterwards.
    const found = await client.query({ query: CONTACT, variables: { id: firstPage[0] }, errorPolicy: 'all' });
    assert.equal(found.errors, undefined);
    assert.equal(found.data.contact.id, firstPage[0]);
    assert.equal(found.data.me.email, server.email);
    const fromCache = client.readQuery({ query: CONTACT, variables: { id: firstPage[0] } });
    assert.equal(fromCache.contact.id, firstPage[0]);

    assert.deepEqual(consoleLines, []);
  } finally {
    client.stop();
  }
});
