import { Prng } from '../../src/lib/prng.js';
import { makeRaftConfig } from '../../src/raft/core/config.js';
import type { Message } from '../../src/raft/core/messages.js';
import { RaftCore } from '../../src/raft/core/raft.js';

/**
 * Micro-benchmark of the Raft core alone: a 3-server cluster in one process, instant storage,
 * messages delivered in memory. Proposals go in batches (as the driver's group commit does) and
 * the figure is committed-and-applied entries per second on the leader — what the core costs
 * next to the disk. Usage: node build/scripts/bench/core-bench.js [--seconds 5] [--batch 64]
 */
function arg(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? Number(process.argv[index + 1]) : fallback;
}

const seconds = arg('seconds', 5);
const batch = arg('batch', 64);
const ids = ['a', 'b', 'c'];
const bootstrap = RaftCore.bootstrapState({ servers: ids.map((id) => ({ id, address: id, voter: true })) });
const cores = new Map(ids.map((id) => [id, new RaftCore(makeRaftConfig({ id }), bootstrap, new Prng(BigInt(id.charCodeAt(0))))]));
const leader = cores.get('a') as RaftCore;
let inFlight: Message[] = [];
let applied = 0;

function pump(): void {
  for (;;) {
    for (const [id, core] of cores) {
      while (core.hasReady()) {
        const ready = core.ready();
        for (const message of ready.messages) inFlight.push(message);
        if (id === 'a') applied += ready.committedEntries.length;
        core.advance(ready);
      }
    }
    if (inFlight.length === 0) return;
    const batchOfMessages = inFlight;
    inFlight = [];
    for (const message of batchOfMessages) cores.get(message.to)?.step(message);
  }
}

leader.campaign();
pump();
if (leader.role !== 'leader') throw new Error('no leader');
const payload = new Uint8Array(100).fill(7);
const started = performance.now();
const deadline = started + seconds * 1000;
applied = 0;
let proposed = 0;
while (performance.now() < deadline) {
  for (let k = 0; k < batch; k++) {
    const result = leader.propose(payload);
    if (!result.ok) throw new Error(`proposal refused: ${result.reason}`);
    proposed++;
  }
  pump();
}
const elapsed = (performance.now() - started) / 1000;
console.log(JSON.stringify({ benchmark: 'raft-core', servers: 3, batch, proposed, applied, seconds: Number(elapsed.toFixed(2)), entriesPerSecond: Math.round(applied / elapsed) }));
