import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { CLI } from './daemon.js';

const exec = promisify(execFile);

/** Runs the built CLI (dist/) with only PATH and `env`; resolves with exit code and output whatever the code. */
export async function dockwarden(args: string[], env: NodeJS.ProcessEnv = {}) {
  try {
    const { stdout, stderr } = await exec(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH, ...env } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
