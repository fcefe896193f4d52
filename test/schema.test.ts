import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { buildSchema } from 'graphql';
import { describe, expect, it } from 'vitest';
import { printSchemaText } from '../src/graphql/schema.js';

const root = new URL('..', import.meta.url).pathname;

const checkedIn = new URL('../schema.graphql', import.meta.url);
const contractTool = new URL('../../shared/tools/check-contract.mjs', import.meta.url);

describe('schema.graphql', () => {
  it('is what the Pothos code prints (run `npm run schema` after changing it)', () => {
    const printed = printSchemaText();
    expect(printed).toContain('type Query {');
    expect(readFileSync(checkedIn, 'utf8')).toBe(printed);
    // The printed SDL is a schema on its own.
    expect(() => buildSchema(printed)).not.toThrow();
  });

  it('matches what `taskport print-schema` prints', () => {
    const printed = spawnSync(process.execPath, ['bin/taskport.mjs', 'print-schema'], { cwd: root, encoding: 'utf8' });
    expect(printed.status, printed.stderr).toBe(0);
    expect(printed.stdout).toBe(readFileSync(checkedIn, 'utf8'));
  });

  it.skipIf(!existsSync(contractTool))('keeps every name of the public contract', () => {
    const checked = spawnSync(
      process.execPath,
      [contractTool.pathname, 'schema.graphql'],
      { cwd: root, encoding: 'utf8' },
    );
    expect(checked.stdout + checked.stderr).not.toMatch(/missing|incompatible/i);
    expect(checked.status, checked.stdout + checked.stderr).toBe(0);
  });
});
