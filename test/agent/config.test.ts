/**
 * The configuration keys of the services issue: `ports.dns` / `-dns-port` (−1 or 0 disable DNS),
 * `enable_script_checks`, and their relations.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { finishConfig, loadAgentConfig } from '../../src/agent/config.js';
import { ConfigError } from '../../src/lib/errors.js';

t.test('DNS port: 8600 by default, -dns-port and ports.dns set it, -1 disables', async (t) => {
  t.equal(finishConfig({}).dnsPort, 8600);
  t.equal(loadAgentConfig(['-dns-port=8601']).config.dnsPort, 8601);
  t.equal(loadAgentConfig(['-dns-port', '-1']).config.dnsPort, -1);
  t.throws(() => loadAgentConfig(['-dns-port=x']), ConfigError);
  t.throws(() => loadAgentConfig(['-http-port=-1']), /expected an integer between 0 and 65535/);
  t.throws(() => finishConfig({ dnsPort: 8500, httpPort: 8500 }), /ports.dns and ports.http must differ/);
});

t.test('enable_script_checks is a boolean; enable_local_script_checks is accepted', async (t) => {
  t.equal(finishConfig({}).enableScriptChecks, false);
  t.equal(loadAgentConfig([], {}).config.enableScriptChecks, false);
  const dir = mkdtempSync(join(tmpdir(), 'conclave-config-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'agent.json');
  writeFileSync(file, JSON.stringify({ enable_script_checks: true, enable_local_script_checks: false, ports: { dns: 0 } }));
  const { config, warnings } = loadAgentConfig([`-config-file=${file}`]);
  t.equal(config.enableScriptChecks, true);
  t.equal(config.dnsPort, 0);
  t.match(warnings, [{ where: /enable_local_script_checks/ }]);
  writeFileSync(file, JSON.stringify({ enable_script_checks: 'yes' }));
  t.throws(() => loadAgentConfig([`-config-file=${file}`]), /enable_script_checks: expected true or false/);
});
