import { loadPolicyFile } from '../domain/policy/load.js';
import { formatPolicyError } from '../domain/policy/result.js';

export function validateCommand(file: string): number {
  const result = loadPolicyFile(file);
  if (!result.ok) {
    for (const error of result.errors) process.stderr.write(`${formatPolicyError(error)}\n`);
    process.stderr.write(`${result.errors.length} error${result.errors.length === 1 ? '' : 's'}; the policy was not accepted\n`);
    return 1;
  }
  process.stdout.write(`${file}: valid (mode ${result.policy.mode}, sha256 ${result.policy.hash.slice(0, 12)})\n`);
  return 0;
}
