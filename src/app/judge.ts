import { connectEngine, type DockerEngine } from '../adapters/docker/engine.js';
import type { Config } from './config.js';
import { engineSockets } from './engine-sockets.js';
import { evaluate } from '../domain/evaluate.js';
import type { ContainerFacts } from '../domain/facts.js';
import type { Policy } from '../domain/policy/model.js';
import { withRecordedExecs, type ExecRecord } from './exec-record.js';
import { hostFactsReader, type HostFactsReader } from './host-facts.js';
import { signatureVerifier, withSignatureVerdicts } from './signature-verdicts.js';
import type { Tracked } from './reconciler.js';
import { hostReader, relabelSetting } from './volumes-setup.js';

/**
 * The daemon's judgement for the commands that run without it (`check`, `status`, `explain`): the same
 * facts (image signature verdicts included), host facts and `evaluate` as a sync, nothing applied. Bridge ports are not looked up (the
 * commands do not report them).
 */
export interface Judge {
  readonly docker: DockerEngine;
  /** One container by id or name; null when the engine has no such container. */
  one(container: string): Promise<Tracked | null>;
  /** Every running container, one at a time. */
  running(): AsyncGenerator<Tracked>;
}

/** `execRecord`: the privileged execs the daemon recorded (finished ones `docker inspect` no longer lists), judged with the running ones. */
export async function judgeFor(config: Config, policy: Policy, execRecord: ExecRecord | null = null): Promise<Judge> {
  const engine = connectEngine({ socketPath: config.docker.socket, timeoutMs: config.docker.timeoutMs, sockets: () => engineSockets(config, policy) });
  // Signatures are looked up afresh (the daemon's verdict cache is its own).
  const docker = withSignatureVerdicts(engine, signatureVerifier({ stateDir: null }), () => policy);
  const relabel = await relabelSetting(config);
  const host: HostFactsReader = hostFactsReader({ relabel: relabel.on ? hostReader(docker, relabel.forced) : null, veths: null });
  const judged = async (read: ContainerFacts): Promise<Tracked> => {
    const facts = execRecord ? withRecordedExecs(read, execRecord) : read;
    return { facts, decision: evaluate(policy, facts, await host.read(facts, policy)) };
  };
  return {
    docker,
    async one(container) {
      const facts = await docker.readFacts(container);
      return facts && judged(facts);
    },
    async *running() {
      for (const id of await docker.listContainerIds()) {
        const facts = await docker.readFacts(id);
        if (facts?.state.running) yield await judged(facts);
      }
    },
  };
}
