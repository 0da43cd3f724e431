/**
 * Conformance with Debian's python3-consul, driven by `python-client.py` against a real HTTP
 * listener (the LocalAgent test double behind it). Skips ONLY when no interpreter can
 * `import consul` (`apt-get install -y python3-consul`); it says so loudly. Besides `python3`,
 * Debian's own `/usr/bin/python3` is tried, since a pyenv `python3` does not see Debian's packages.
 */
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { listenHttp } from '../../src/http/serve.js';
import { setup } from './helpers.js';

/** The repository's copy of the script (this file runs from build/test/http or build-http/test/http). */
const SCRIPT = fileURLToPath(new URL('../../../test/http/python-client.py', import.meta.url));

function pythonWithConsul(): string | null {
  const candidates = [process.env['PYTHON'], 'python3', '/usr/bin/python3'].filter((c): c is string => c !== undefined);
  for (const python of candidates) {
    const probe = spawnSync(python, ['-c', 'import consul'], { stdio: 'ignore' });
    if (probe.status === 0) return python;
  }
  return null;
}

function run(python: string, port: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, [SCRIPT, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

const python = pythonWithConsul();
if (python === null) {
  const reason = 'SKIPPED: python3-consul is not installed (`python3 -c "import consul"` fails); '
    + 'install it with `apt-get install -y python3-consul` — CI must not skip this';
  console.error(`\n*** ${reason} ***\n`);
  t.test('python-consul conformance', { skip: reason }, async () => undefined);
} else {
  t.test(`python-consul (${python}): kv, sessions with lowercase fields, acquire/release, status, agent`, async (t) => {
    const f = await setup(t);
    const { port } = await listenHttp(f.app, '127.0.0.1', 0);
    const { code, output } = await run(python, port);
    t.equal(code, 0, output);
    t.match(output, /ALL OK/);
  });
}
