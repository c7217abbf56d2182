// What GraphQL tools see through introspection is the schema checked in as
// schema.graphql.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import {
  buildClientSchema,
  buildSchema,
  getIntrospectionQuery,
  lexicographicSortSchema,
  printSchema,
} from 'graphql';

import { schemaFile, startServer } from '../support/server.mjs';

let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  await server?.stop();
});

/**
 * async-graphql answers `__schema.description` with the text that describes
 * the `__Schema` introspection type itself, whatever the schema: not a
 * description of this schema, and one that no SDL printer writes.
 */
const INTROSPECTION_TYPE_TEXT =
  'A GraphQL Schema defines the capabilities of a GraphQL server. It exposes all available types and directives on the server, as well as the entry points for query, mutation, and subscription operations.';

/** The SDL graphql-js prints for a schema, with types and fields in name order. */
const normalised = (schema) => printSchema(lexicographicSortSchema(schema));

/** A line diff of `expected` (-) and `actual` (+), with two lines of context. */
function lineDiff(expected, actual, context = 2) {
  const a = expected.split('\n');
  const b = actual.split('\n');
  // Longest common subsequence lengths of the suffixes a[i..] and b[j..].
  const common = Array.from({ length: a.length + 1 }, () => new Uint32Array(b.length + 1));
  for (let i = a.length - 1; i >= 0; i -= 1) {
    for (let j = b.length - 1; j >= 0; j -= 1) {
      common[i][j] = a[i] === b[j] ? common[i + 1][j + 1] + 1 : Math.max(common[i + 1][j], common[i][j + 1]);
    }
  }
  const lines = [];
  let [i, j] = [0, 0];
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      lines.push({ mark: ' ', text: a[i] });
      i += 1;
      j += 1;
    } else if (i < a.length && (j === b.length || common[i + 1][j] >= common[i][j + 1])) {
      lines.push({ mark: '-', text: a[i] });
      i += 1;
    } else {
      lines.push({ mark: '+', text: b[j] });
      j += 1;
    }
  }
  const near = (index) =>
    lines.slice(Math.max(0, index - context), index + context + 1).some((line) => line.mark !== ' ');
  const shown = [];
  lines.forEach((line, index) => {
    if (near(index)) shown.push(`${line.mark} ${line.text}`);
    else if (shown.at(-1) !== '…') shown.push('…');
  });
  return shown.join('\n');
}

test('introspection rebuilds the schema that schema.graphql holds', { timeout: 60_000 }, async () => {
  const query = getIntrospectionQuery({
    descriptions: true,
    specifiedByUrl: true,
    directiveIsRepeatable: true,
    schemaDescription: true,
    inputValueDeprecation: true,
    // Without `isOneOf`, introspection could not tell the oneOf inputs
    // that schema.graphql marks `@oneOf`.
    oneOf: true,
  });
  // Sent as tools send it: a plain POST, with no token.
  const introspection = await server.graphql(query, {}, null);
  assert.equal(introspection.status, 200, JSON.stringify(introspection.body));
  assert.equal(introspection.body.errors, undefined, JSON.stringify(introspection.body.errors));

  const { __schema } = introspection.body.data;
  if (__schema.description === INTROSPECTION_TYPE_TEXT) __schema.description = null;
  const served = normalised(buildClientSchema(introspection.body.data));
  const checkedIn = normalised(buildSchema(await readFile(schemaFile, 'utf8')));
  if (served !== checkedIn) {
    assert.fail(
      `the served schema (+) differs from schema.graphql (-):\n${lineDiff(checkedIn, served)}`,
    );
  }
});
