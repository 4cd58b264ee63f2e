import * as z from 'zod';
import { policySchema } from './schema.js';

/**
 * The policy's JSON Schema (draft 2020-12) for editors, generated from the zod schema so the two cannot
 * disagree. It describes the YAML as written (`io: 'input'`); what only code can check (addresses, port
 * specs, capability names, set references) is validated by `dockwarden policy validate`.
 */
export function policyJsonSchemaText(): string {
  const schema = z.toJSONSchema(policySchema(new Set()), { io: 'input', target: 'draft-2020-12' });
  return `${JSON.stringify(schema, null, 2)}\n`;
}
