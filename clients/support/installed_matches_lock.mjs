// Exits 0 when node_modules holds exactly what package-lock.json pins (npm
// records what it installed in node_modules/.package-lock.json) and the
// lockfile pins what package.json asks for, so that CI can skip a fresh
// `npm ci`; 1 otherwise.

import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';

const read = (file) => {
  try {
    return JSON.parse(readFileSync(new URL(`../${file}`, import.meta.url), 'utf8'));
  } catch {
    return undefined;
  }
};

const manifest = read('package.json');
const locked = read('package-lock.json');
const installed = read('node_modules/.package-lock.json');
// The hidden lockfile lists the installed packages only, not the root.
const { '': root, ...lockedPackages } = locked?.packages ?? {};
const asked = (entry) => [entry?.dependencies ?? {}, entry?.devDependencies ?? {}];
const matches =
  root !== undefined &&
  isDeepStrictEqual(asked(root), asked(manifest)) &&
  isDeepStrictEqual(lockedPackages, installed?.packages);
process.exit(matches ? 0 : 1);
