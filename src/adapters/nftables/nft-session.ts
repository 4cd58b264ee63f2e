/**
 * One long-lived `nft -i` process that writes scripts for the daemon, so that its netlink socket can
 * own a table (`flags owner`): the kernel keeps such a table through anyone else's `nft flush ruleset`,
 * refuses others' changes to it (EPERM), and deletes it when the socket closes, i.e. when this
 * process ends (README "Published ports" › The guard). Every write is one transaction, as with `nft -f`.
 *
 * The protocol (nft 1.0.6, Debian's, built with libedit; checked against the real nft in
 * test/integration/nft-session.test.ts): nft -i reads one command a line and runs each line as one
 * transaction; a multi-line script is written to a private file and sent as `include "FILE"`, which
 * keeps nft's error locations (FILE:LINE:COL) as with `nft -f`. nft prints nothing on success and its
 * errors on stderr, and says nothing when a command is done; so each command is followed by a marker
 * line that is a syntax error by design (`dockwarden-reply-N`): nft answers it on stderr with an
 * `Error:` line and the marker echoed, after whatever the command printed. Everything on stderr
 * before the marker's answer is the command's reply: empty means it was applied. Each wait is bounded
 * (the process is killed at the deadline); one that ends is started again by the next write.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TOOL_TIMEOUT_MS, ToolError } from '../firewall/run-tool.js';
import { toNftError, type NftError, type NftOptions } from './nft.js';

/** Stderr held while waiting for a reply; beyond it nft is not speaking our protocol. */
const MAX_REPLY = 16 << 20;
const MARKER = 'dockwarden-reply-';

/** The marker line sent after the `seq`-th command. */
export const replyMarker = (seq: number): string => `${MARKER}${seq}`;

/**
 * The reply to the command before `marker`, once stderr (`buffer`, as received so far) holds nft's
 * whole answer to the marker: `reply` is what nft printed before that answer, `rest` what follows it
 * (the next command's). Null while the answer is not all there.
 */
export function takeReply(buffer: string, marker: string): { readonly reply: string; readonly rest: string } | null {
  // nft's answer: `Error: <why>`, the marker echoed as its own line, a line of carets under it.
  const echoed = buffer.indexOf(`\n${marker}\n`);
  if (echoed < 0) return null;
  const carets = buffer.indexOf('\n', echoed + marker.length + 2);
  if (carets < 0) return null;
  const answer = buffer.lastIndexOf('\n', echoed - 1) + 1;
  return { reply: buffer.slice(0, answer), rest: buffer.slice(carets + 1) };
}

/**
 * The failure a reply tells of, located in `script` as an `nft -f` failure is; null when the script
 * was applied. nft's errors are `Error: …` lines, or `FILE:LINE:COL: Error: …` for the included script.
 */
export function replyError(reply: string, script: string): NftError | null {
  if (!/^(?:\S*: )?Error: /m.test(reply)) return null;
  return toNftError(new ToolError(`nft: ${reply.trim().split('\n')[0]}`, 'nft', 1, false, reply), script);
}

export interface NftSessionEvents {
  /** A new `nft -i` process runs (it holds nothing yet). */
  started?(pid: number): void;
  /** It ended without `close()`: whatever its socket owned is gone. */
  ended?(code: number | null, signal: NodeJS.Signals | null): void;
}

interface Request {
  readonly marker: string;
  readonly script: string;
  resolve(): void;
  reject(error: unknown): void;
}

export class NftSession {
  private child: ChildProcess | null = null;
  /** Counts processes started: a table owned by one is gone once another runs. */
  private started = 0;
  private seq = 0;
  private stderr = '';
  private current: Request | null = null;
  private tail: Promise<unknown> = Promise.resolve();
  private dir: string | null = null;
  private closed = false;

  constructor(
    private readonly options: NftOptions & NftSessionEvents & { readonly timeoutMs?: number } = {},
  ) {}

  /** The process running now, by its count; null when none runs. A table it owns lives as long as this stays the same. */
  get holder(): number | null {
    return this.child === null ? null : this.started;
  }

  /**
   * Applies `script` (an `nft -f` script) as one transaction, and says which process did (its
   * `holder`: what the script made it own lives while that stays the same); rejects with an NftError
   * (nft's, or the process ended or timed out).
   */
  run(script: string): Promise<number> {
    const result = this.tail.then(() => this.send(script));
    this.tail = result.catch(() => {});
    return result;
  }

  /**
   * Starts the process now, when none runs, so that the next write does not wait for nft to start (a
   * daemon's start-up, whose first write comes at the end of its start-up reconcile). It holds nothing yet.
   */
  start(): void {
    if (!this.closed && this.child === null) this.spawn();
  }

  /** Ends the process (what it owns goes with it); no write after this. */
  close(): void {
    this.closed = true;
    this.child?.kill('SIGKILL');
    if (this.dir !== null) rmSync(this.dir, { recursive: true, force: true });
  }

  private async send(script: string): Promise<number> {
    if (this.closed) throw new ToolError('nft -i: the session is closed', 'nft', null, false, '');
    const file = join(this.directory(), 'script.nft');
    // The path goes into nft's quoted include: TMPDIR must not end its quotes or its line.
    if (/["\n]/.test(file)) throw new TypeError(`unusable directory for nft scripts: ${JSON.stringify(this.dir)}`);
    await writeFile(file, script, { mode: 0o600 });
    const child = this.child ?? this.spawn();
    const holder = this.started;
    const marker = replyMarker(++this.seq);
    const timeoutMs = this.options.timeoutMs ?? TOOL_TIMEOUT_MS;
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => this.abandon(new ToolError(`nft: killed after ${timeoutMs} ms`, 'nft', null, true, this.stderr)), timeoutMs);
      const settle = (done: () => void): void => {
        clearTimeout(timer);
        this.current = null;
        done();
      };
      this.current = {
        marker,
        script,
        resolve: () => settle(() => resolve(holder)),
        reject: (error) => settle(() => reject(error)),
      };
      child.stdin!.write(`include "${file}"\n${marker}\n`);
    });
  }

  /** A private directory (0700): the file nft includes is ours alone, and so is nft's HOME. */
  private directory(): string {
    return (this.dir ??= mkdtempSync(join(tmpdir(), 'dockwarden-nft-')));
  }

  private spawn(): ChildProcess {
    const command = ['nft', '-i'];
    const [file, ...argv] = this.options.netns === undefined ? command : ['ip', 'netns', 'exec', this.options.netns, ...command];
    // nft -i keeps a command history and writes it to $HOME/.nft.history when it ends (and reads it
    // when it starts): HOME is our private directory, so it is neither root's nor left behind.
    const child = spawn(file!, argv, { stdio: ['pipe', 'ignore', 'pipe'], env: { ...process.env, HOME: this.directory() } });
    this.child = child;
    this.started++;
    this.stderr = '';
    // The daemon's exit must not wait for nft: its stdin closes with the daemon, and nft ends then.
    child.unref();
    for (const stream of [child.stdin, child.stderr]) (stream as unknown as { unref(): void }).unref();
    child.stdin!.on('error', () => {}); // its end is reported by 'exit'
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      if (this.child === child) this.heard(chunk);
    });
    let ended = false;
    const end = (code: number | null, signal: NodeJS.Signals | null, error?: Error): void => {
      if (ended) return;
      ended = true;
      // Unless abandoned already (its request failed then): the request waiting fails with it.
      if (this.child === child) this.abandon(new ToolError(`nft -i: ${error?.message ?? `ended (${signal ?? `exit ${code}`})`}`, 'nft', code, false, this.stderr));
      if (!this.closed) this.options.ended?.(code, signal);
    };
    child.once('exit', (code, signal) => end(code, signal));
    child.once('error', (error) => end(null, null, error));
    if (child.pid !== undefined) this.options.started?.(child.pid);
    return child;
  }

  private heard(chunk: string): void {
    this.stderr += chunk;
    const request = this.current;
    if (request === null) return;
    const taken = takeReply(this.stderr, request.marker);
    if (taken === null) {
      if (this.stderr.length > MAX_REPLY) this.abandon(new ToolError('nft -i: reply too long', 'nft', null, false, this.stderr.slice(0, 4096)));
      return;
    }
    this.stderr = taken.rest;
    const error = replyError(taken.reply, request.script);
    if (error === null) request.resolve();
    else request.reject(error);
  }

  /** Fails the request waiting and ends the process: the next write starts another, whatever this one still prints. */
  private abandon(error: ToolError): void {
    this.current?.reject(toNftError(error, this.current.script));
    const child = this.child;
    this.child = null;
    child?.kill('SIGKILL');
  }
}
