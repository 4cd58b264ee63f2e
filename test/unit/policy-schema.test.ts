import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import t from 'tap';
import { policyJsonSchemaText } from '../../src/domain/policy/json-schema.js';

const CHECKED_IN = resolve(import.meta.dirname, '../../schema/policy.schema.json');

t.test('schema/policy.schema.json is what the zod schema generates', async (t) => {
  t.equal(
    readFileSync(CHECKED_IN, 'utf8'),
    policyJsonSchemaText(),
    'stale: run `npm run build && node dist/cli/main.js policy schema > schema/policy.schema.json` and commit the result',
  );
});

t.test('the JSON Schema is strict like the loader, and describes the YAML as written', async (t) => {
  const schema = JSON.parse(policyJsonSchemaText()) as {
    $schema: string;
    required: string[];
    additionalProperties: boolean;
    properties: { containers: { properties: Record<string, unknown> }; ports: { properties: { rules: { items: { required: string[] } } } } };
  };
  t.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
  t.same(schema.required, ['version']);
  t.equal(schema.additionalProperties, false);
  t.ok('host-namespaces' in schema.properties.containers.properties, 'kebab-case keys, as in the file');
  t.same(schema.properties.ports.properties.rules.items.required, ['name', 'match', 'allow']);
});
