// `npm run kinds:schema`: writes schema/kinds.schema.json, the kinds' config declarations as a JSON Schema
// (src/kinds/schema.ts), and says whether it changed.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { kindsSchemaText } from './schema.ts';

export const KINDS_SCHEMA_PATH = fileURLToPath(new URL('../../schema/kinds.schema.json', import.meta.url));

const text = kindsSchemaText();
const before = existsSync(KINDS_SCHEMA_PATH) ? readFileSync(KINDS_SCHEMA_PATH, 'utf8') : null;
if (before === text) console.log(`${KINDS_SCHEMA_PATH}: up to date`);
else {
  writeFileSync(KINDS_SCHEMA_PATH, text);
  console.log(`${KINDS_SCHEMA_PATH}: ${before === null ? 'written' : 'rewritten'}`);
}
