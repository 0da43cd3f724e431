/**
 * Service discovery end to end (issue 9): 3 servers and 2 client agents as real processes. A
 * service with an HTTP check on c1 (registered with the npm `consul` client) and one with a TTL
 * check on c2 reach the catalog within seconds; `?passing` and DNS (real UDP and TCP packets)
 * list only healthy instances; stopping the HTTP endpoint drops c1's instance and wakes a
 * blocking health query; `conclave watch` prints each change; kill -9 of c2 turns its instance
 * critical through serfHealth; its registrations survive its restart; deregistering (the CLI)
 * removes it from the catalog and DNS; python-consul runs the same flow against a client agent.
 *
 * The agents run `build/src/main.js`, or CONCLAVE_MAIN when set (a build in another folder).
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:http';
import { once } from 'node:events';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Consul from 'consul';
import packet from 'dns-packet';
import type { DecodedPacket } from 'dns-packet';
import t from 'tap';
import { Cluster, MAIN, freePorts } from './harness.js';

const AGENT_MAIN = process.env['CONCLAVE_MAIN'] ?? MAIN;
const SERVER_CONFIG = resolve('config/loopback-server.json');
const CLIENT_CONFIG = resolve('config/loopback-client.json');
const PYTHON_SCRIPT = fileURLToPath(new URL('../../../test/cluster/services-python.py', import.meta.url));

interface HealthRow {
  Node: { Node: string };
  Service: { ID: string; Port: number };
  Checks: { CheckID: string; Status: string; Output: string }[];
}

/** The HTTP endpoint c1's check probes: 200 until `healthy` is false, then 500. */
let healthy = true;
const endpoint = createServer((_request, response) => {
  response.statusCode = healthy ? 200 : 500;
  response.end(healthy ? 'up' : 'down');
});
endpoint.listen(0, '127.0.0.1');
await once(endpoint, 'listening');
const endpointAddress = endpoint.address();
const endpointPort = typeof endpointAddress === 'object' && endpointAddress !== null ? endpointAddress.port : 0;

const cluster = await Cluster.create({ servers: 3, clients: 2, configFiles: { server: SERVER_CONFIG, client: CLIENT_CONFIG }, main: AGENT_MAIN });
const dnsPorts = new Map<string, number>();
for (const agent of cluster.agents) {
  const [port] = (await freePorts(1)) as [number];
  dnsPorts.set(agent.name, port);
  Object.assign(agent, { args: [...agent.args, `-dns-port=${port}`] });
}
cluster.startAll();
const children: ChildProcess[] = [];
t.teardown(async () => {
  for (const child of children) child.kill('SIGKILL');
  endpoint.closeAllConnections();
  endpoint.close();
  await cluster.destroy();
});
await cluster.waitForLeader(60_000);

function consulOf(name: string): Consul {
  return new Consul({ host: '127.0.0.1', port: cluster.agent(name).httpPort });
}

async function health(name: string, query = '?passing'): Promise<HealthRow[]> {
  const { status, text } = await cluster.http(name, 'GET', `/v1/health/service/web${query}`);
  if (status !== 200) throw new Error(`${status} ${text}`);
  return JSON.parse(text) as HealthRow[];
}

const idsOf = (rows: HealthRow[]): string[] => rows.map((row) => row.Service.ID).sort();

/** One DNS query over UDP (or TCP) to an agent's DNS port. */
function dns(name: string, question: string, type: 'A' | 'SRV', transport: 'udp' | 'tcp' = 'udp'): Promise<DecodedPacket & { rcode: string }> {
  const port = dnsPorts.get(name) as number;
  const message = packet.encode({ type: 'query', id: 99, questions: [{ name: question, type }] });
  return new Promise((done, fail) => {
    if (transport === 'udp') {
      const socket = createSocket('udp4');
      const timer = setTimeout(() => {
        socket.close();
        fail(new Error('no DNS answer'));
      }, 3000);
      socket.once('message', (reply) => {
        clearTimeout(timer);
        socket.close();
        done(packet.decode(reply) as DecodedPacket & { rcode: string });
      });
      socket.send(message, port, '127.0.0.1');
      return;
    }
    import('node:net').then(({ connect }) => {
      const socket = connect(port, '127.0.0.1', () => socket.write(packet.streamEncode({ type: 'query', id: 99, questions: [{ name: question, type }] })));
      let buffered = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        if (buffered.byteLength >= 2 && buffered.byteLength >= 2 + buffered.readUInt16BE(0)) {
          socket.end();
          done(packet.decode(buffered.subarray(2, 2 + buffered.readUInt16BE(0))) as DecodedPacket & { rcode: string });
        }
      });
      socket.on('error', fail);
    }, fail);
  });
}

function conclave(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [AGENT_MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

t.test('services on two clients reach the catalog; ?passing, node-consul and DNS list the healthy ones', async (t) => {
  const c1 = consulOf('c1');
  t.teardown(() => c1.destroy());
  await c1.agent.service.register({
    name: 'web', id: 'web-c1', port: 8081, tags: ['http'],
    check: { name: 'web health', http: `http://127.0.0.1:${endpointPort}/health`, interval: '500ms', timeout: '1s' },
  });
  const registered = await cluster.http('c2', 'PUT', '/v1/agent/service/register', JSON.stringify({ Name: 'web', ID: 'web-c2', Port: 8082, Check: { TTL: '60s' } }));
  t.equal(registered.status, 200, registered.text);
  t.equal((await cluster.http('c2', 'PUT', '/v1/agent/check/pass/service:web-c2?note=ready')).status, 200);
  const started = Date.now();
  const rows = await cluster.waitFor('both instances passing', async () => {
    const found = await health('s1');
    return found.length === 2 ? found : undefined;
  }, 15_000);
  t.ok(Date.now() - started < 10_000, `within seconds (${Date.now() - started} ms)`);
  t.same(idsOf(rows), ['web-c1', 'web-c2']);
  t.match(rows.find((row) => row.Service.ID === 'web-c1')?.Checks, [{ CheckID: 'serfHealth', Status: 'passing' }, { CheckID: 'service:web-c1', Status: 'passing', Output: /200 OK Output: up/ }]);
  const list = (await c1.catalog.service.list()) as Record<string, string[]>;
  t.same(list, { consul: [], web: ['http'] }, 'node-consul catalog.service.list: the servers\' consul service too');
  const nodes = (await c1.health.service({ service: 'web', passing: true })) as HealthRow[];
  t.same(idsOf(nodes), ['web-c1', 'web-c2'], 'node-consul health.service');
  const consulInstances = await health('c2', '?passing').catch(() => []);
  t.ok(Array.isArray(consulInstances));
  const srv = await dns('s2', 'web.service.consul', 'SRV');
  t.equal(srv.rcode, 'NOERROR');
  t.same((srv.answers ?? []).map((answer) => (answer as { data: { port: number } }).data.port).sort(), [8081, 8082]);
  t.same((srv.answers ?? []).map((answer) => (answer as { data: { target: string } }).data.target).sort(), ['c1.node.dc1.consul', 'c2.node.dc1.consul']);
  const viaClient = await dns('c1', 'web.service.consul', 'A', 'tcp');
  t.same((viaClient.answers ?? []).map((answer) => (answer as { data: string }).data), ['127.0.0.1', '127.0.0.1'], 'a client agent answers DNS by forwarding');
  const servers = await dns('c2', 'consul.service.consul', 'SRV');
  t.equal(servers.answers?.length, 3, 'the consul service of the three servers');
  // Debian's dig (dnsutils), when installed, as an operator would ask.
  const dig = spawnSync('dig', ['@127.0.0.1', '-p', String(dnsPorts.get('s1')), 'web.service.consul', 'SRV', '+short'], { encoding: 'utf8' });
  if (dig.error !== undefined) {
    t.comment('dig is not installed (apt-get install -y dnsutils): the dig check is skipped');
  } else {
    t.same(dig.stdout.trim().split('\n').sort(), ['1 1 8081 c1.node.dc1.consul.', '1 1 8082 c2.node.dc1.consul.'], 'dig +short SRV');
  }
});

t.test('stopping the HTTP endpoint drops the instance; a blocking query and `conclave watch` see it', async (t) => {
  const first = await cluster.http('s3', 'GET', '/v1/health/service/web?passing');
  const index = first.headers['x-consul-index'] as string;
  const watch = spawn(process.execPath, [AGENT_MAIN, 'watch', '-type', 'service', '-service', 'web', '-passingonly', `-http-addr=127.0.0.1:${cluster.agent('s1').httpPort}`],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(watch);
  let watched = '';
  watch.stdout.setEncoding('utf8').on('data', (chunk: string) => (watched += chunk));
  await cluster.waitFor('the first watch output', async () => (watched.includes('web-c2') ? true : undefined), 10_000);
  const blocked = cluster.http('s3', 'GET', `/v1/health/service/web?passing&index=${index}&wait=30s`, undefined, 35_000);
  const stoppedAt = Date.now();
  healthy = false;
  const woken = await blocked;
  t.ok(Date.now() - stoppedAt < 10_000, `the blocking query woke within seconds (${Date.now() - stoppedAt} ms)`);
  t.ok(Number(woken.headers['x-consul-index']) > Number(index));
  const remaining = await cluster.waitFor('c1 out of ?passing', async () => {
    const found = await health('s1');
    return found.length === 1 ? found : undefined;
  }, 10_000);
  t.same(idsOf(remaining), ['web-c2']);
  t.match((await health('s1', '')).find((row) => row.Service.ID === 'web-c1')?.Checks, [{}, { Status: 'critical', Output: /500 Internal Server Error/ }]);
  await cluster.waitFor('watch printed the change', async () => (watched.split('\n[').length >= 2 ? true : undefined), 10_000);
  watch.kill('SIGINT');
  const [code] = (await once(watch, 'exit')) as [number | null];
  t.equal(code, 0, 'watch stops cleanly on SIGINT');
  const a = await dns('s1', 'web.service.consul', 'A');
  t.equal(a.answers?.length, 1, 'DNS answers only the passing instance');
  healthy = true;
  await cluster.waitFor('c1 back', async () => ((await health('s1')).length === 2 ? true : undefined), 10_000);
});

t.test('kill -9 a client: its instance turns critical (serfHealth) and leaves ?passing and DNS; its registrations survive a restart', async (t) => {
  await cluster.kill('c2', 'SIGKILL');
  const rows = await cluster.waitFor('c2 out of ?passing', async () => {
    const found = await health('s2');
    return found.length === 1 ? found : undefined;
  }, 20_000);
  t.same(idsOf(rows), ['web-c1']);
  const all = await health('s2', '');
  t.match(all.find((row) => row.Service.ID === 'web-c2')?.Checks, [{ CheckID: 'serfHealth', Status: 'critical' }], 'the node takes its service with it');
  t.equal((await dns('s2', 'web.service.consul', 'A')).answers?.length, 1);
  cluster.start('c2');
  const services = await cluster.waitFor('c2 back with its services', async () => {
    const { status, text } = await cluster.http('c2', 'GET', '/v1/agent/services');
    return status === 200 ? (JSON.parse(text) as Record<string, { Port: number }>) : undefined;
  }, 20_000);
  t.same(Object.keys(services), ['web-c2'], 'restored from the data dir');
  t.equal(services['web-c2']?.Port, 8082);
  // The TTL check restarts critical until the application passes it again.
  await cluster.http('c2', 'PUT', '/v1/agent/check/pass/service:web-c2');
  await cluster.waitFor('c2 passing again', async () => ((await health('s1')).length === 2 ? true : undefined), 20_000);
});

t.test('deregister with the CLI: gone from the catalog and DNS', async (t) => {
  const run = await conclave(['services', 'deregister', '-id', 'web-c1', `-http-addr=127.0.0.1:${cluster.agent('c1').httpPort}`]);
  t.equal(run.code, 0, run.stderr);
  t.equal(run.stdout, 'Deregistered service: web-c1\n');
  await cluster.waitFor('web-c1 gone', async () => (idsOf(await health('s3', '')).join() === 'web-c2' ? true : undefined), 10_000);
  const srv = await dns('s3', 'web.service.consul', 'SRV');
  t.same((srv.answers ?? []).map((answer) => (answer as { data: { port: number } }).data.port), [8082]);
  const services = await conclave(['catalog', 'services', '-tags', `-http-addr=127.0.0.1:${cluster.agent('s1').httpPort}`]);
  t.match(services.stdout, /^consul\s*$/m);
  t.match(services.stdout, /^web\s*$/m, 'web-c1 carried the only tag');
  const nodes = await conclave(['catalog', 'nodes', '-service', 'web', `-http-addr=127.0.0.1:${cluster.agent('s1').httpPort}`]);
  t.match(nodes.stdout, /^c2\s/m);
  t.notMatch(nodes.stdout, /^c1\s/m);
});

t.test('python-consul: register, pass, find, fail, deregister against a client agent', async (t) => {
  const python = ['/usr/bin/python3', 'python3'].find((candidate) => spawnSync(candidate, ['-c', 'import consul'], { stdio: 'ignore' }).status === 0);
  if (python === undefined) {
    t.fail('python3-consul is not installed (`apt-get install -y python3-consul`): CI must not skip this');
    return;
  }
  const run = spawnSync(python, [PYTHON_SCRIPT, String(cluster.agent('c1').httpPort)], { encoding: 'utf8', timeout: 60_000 });
  t.equal(run.status, 0, `${run.stdout}${run.stderr}`);
  t.match(run.stdout, /ALL OK/);
});
