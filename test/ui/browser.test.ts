/**
 * The web UI end to end (issue 10): Debian's Chromium, driven by playwright-core, against a real
 * 3-server cluster started with `-ui`. A person's path through it:
 * - a node key registered the way `swarm join` does (a TTL session with Behavior delete, then
 *   `PUT docker/swarm/nodes/<ip:port>?acquire=<session>` with the lock flag) is found under
 *   docker/swarm/nodes, with its flag and lock session; a second one appears live;
 * - keys are created, edited and deleted through the UI (a folder too), and checked over HTTP;
 * - a concurrent change makes a CAS edit fail visibly, overwriting nothing;
 * - Nodes, Services (lighting up when a service registers, if this build has the endpoint) and
 *   Cluster views; keyboard navigation; axe-core finds no serious accessibility violation;
 * - the leader is killed: its own page says the agent cannot be reached, a follower's Cluster
 *   view shows the new leader; with one server left, the page says there is no leader.
 * Screenshots of every view at a laptop and a phone width go to results/ui/.
 *
 * Skips (loudly) only when /usr/bin/chromium is missing: `apt-get install -y chromium`. No
 * browser is ever downloaded.
 */
import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import type { BrowserContext, Page } from 'playwright-core';
import { Cluster } from '../cluster/harness.js';

const CHROMIUM = '/usr/bin/chromium';
const RESULTS = resolve('results/ui');
const LAPTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const LOCK_FLAG = '3304740253564472344';
const SWARM_NODE = '127.0.0.1:2375';
const SWARM_NODE_2 = '127.0.0.1:2376';

if (!existsSync(CHROMIUM)) {
  const message = `${CHROMIUM} is missing: the web UI browser tests are SKIPPED. Install it with: apt-get install -y chromium`;
  process.stderr.write(`\n${'!'.repeat(message.length)}\n${message}\n${'!'.repeat(message.length)}\n\n`);
  t.comment(message);
  t.test('web UI in Chromium', { skip: message }, async () => {});
} else {
  await runBrowserTests();
}

async function runBrowserTests(): Promise<void> {
  mkdirSync(RESULTS, { recursive: true });
  const cluster = await Cluster.create({ servers: 3, extraArgs: ['-ui'] });
  const userDataDir = mkdtempSync(join(tmpdir(), 'conclave-ui-chromium-'));
  let context: BrowserContext | null = null;
  t.teardown(async () => {
    await context?.close();
    await cluster.destroy();
    rmSync(userDataDir, { recursive: true, force: true });
  });
  cluster.startAll();
  const leader = await cluster.waitForLeader(60_000);
  const followers = cluster.servers.map((server) => server.name).filter((name) => name !== leader);
  const follower = followers[0] ?? 's1';
  const base = (name: string): string => cluster.url(name, '');

  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: LAPTOP,
    colorScheme: 'light',
    reducedMotion: 'reduce',
  });
  context.setDefaultTimeout(20_000);
  const problems: string[] = [];
  let expectNetworkErrors = false;
  const open = async (name: string, path: string): Promise<Page> => {
    const page = await context!.newPage();
    page.on('pageerror', (error) => problems.push(`${name}: page error: ${error.message}`));
    page.on('console', (message) => {
      // Once agents are killed, failed requests are the point; before, any console error is a bug
      // (a CSP violation too), except Chromium's note on a KV 404: a missing key or an empty folder.
      if (message.type() !== 'error' || expectNetworkErrors) return;
      const url = message.location().url;
      if (/status of 404/.test(message.text()) && new URL(url, 'http://x').pathname.startsWith('/v1/kv/')) return;
      problems.push(`${name}: console: ${message.text()} (${url})`);
    });
    await page.goto(`${base(name)}${path}`);
    return page;
  };
  const shoot = async (page: Page, view: string): Promise<void> => {
    await page.screenshot({ path: join(RESULTS, `${view}-laptop.png`), fullPage: true });
    await page.setViewportSize(PHONE);
    await page.waitForTimeout(250);
    await page.screenshot({ path: join(RESULTS, `${view}-phone.png`), fullPage: true });
    await page.setViewportSize(LAPTOP);
  };
  const raw = async (key: string): Promise<{ status: number; text: string }> => {
    const answer = await cluster.http(leader, 'GET', `/v1/kv/${key}?raw`);
    return { status: answer.status, text: answer.text };
  };

  const page = await open(follower, '/');

  await t.test('a swarm-joined node is found under docker/swarm/nodes, live', async (t) => {
    const session = await cluster.http(leader, 'PUT', '/v1/session/create', JSON.stringify({ LockDelay: '1ms', Behavior: 'delete', TTL: '1m30s' }));
    t.equal(session.status, 200, session.text);
    const sessionId = (JSON.parse(session.text) as { ID: string }).ID;
    const acquired = await cluster.http(leader, 'PUT', `/v1/kv/docker/swarm/nodes/${SWARM_NODE}?acquire=${sessionId}&flags=${LOCK_FLAG}`, SWARM_NODE);
    t.equal(acquired.text, 'true', 'swarm join registered its node');
    t.equal((await cluster.http(leader, 'PUT', `/v1/kv/docker/swarm/nodes?flags=${LOCK_FLAG}`)).text, 'true', 'swarm manage made its dir key');

    await page.waitForURL('**/ui/kv/');
    t.equal(new URL(page.url()).pathname, '/ui/kv/', '/ redirects to the UI, which opens on Key/Value');
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Key/Value' }).click();
    await page.getByRole('link', { name: 'docker/', exact: true }).click();
    await page.getByRole('link', { name: 'swarm/', exact: true }).click();
    await page.getByRole('link', { name: 'nodes/', exact: true }).click();
    await page.waitForURL('**/ui/kv/docker/swarm/nodes/');
    t.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'nodes/');
    const breadcrumb = page.getByRole('navigation', { name: 'Breadcrumb' });
    t.same(await breadcrumb.getByRole('link').allTextContents(), ['Key/Value', 'docker/', 'swarm/', 'nodes/']);
    const nodeLink = page.getByRole('link', { name: SWARM_NODE, exact: true });
    await nodeLink.waitFor();
    t.pass(`${SWARM_NODE} is listed under docker/swarm/nodes`);

    // Live: a second `swarm join` shows up without a reload (blocking query on the folder).
    await cluster.http(leader, 'PUT', `/v1/kv/docker/swarm/nodes/${SWARM_NODE_2}?acquire=${sessionId}&flags=${LOCK_FLAG}`, SWARM_NODE_2);
    await page.getByRole('link', { name: SWARM_NODE_2, exact: true }).waitFor();
    t.pass('a second node appeared live');
    await shoot(page, 'kv-folder');

    await nodeLink.click();
    await page.waitForURL(`**/ui/kv/docker/swarm/nodes/${encodeURIComponent(SWARM_NODE)}`);
    t.equal(await page.locator('#value-display').textContent(), SWARM_NODE, 'the value, as text');
    const details = page.locator('.details');
    await details.getByText(sessionId).waitFor();
    t.match(await details.textContent(), new RegExp(`${LOCK_FLAG}.*0x2ddccbc058a50c18.*consul/api Lock`), 'the exact lock flag, in hex, named');
    await details.getByText('Behavior: delete').waitFor();
    t.match(await details.textContent(), /TTL: 1m30s/, 'the lock session is shown with its TTL and behavior');
    await shoot(page, 'kv-key');
  });

  await t.test('create, edit and delete keys through the UI', async (t) => {
    await page.goto(`${base(follower)}/ui/kv/`);
    await page.getByRole('button', { name: 'Create key' }).click();
    await page.getByLabel('Key name').fill('ui-test/config.json');
    await page.getByLabel('Value', { exact: true }).fill('{"replicas":1,"flag":16210313421097356768}');
    await shoot(page, 'kv-create');
    await page.getByRole('button', { name: 'Create', exact: true }).click();
    await page.waitForURL('**/ui/kv/ui-test/config.json');
    await page.getByRole('status').filter({ hasText: 'Created key ui-test/config.json.' }).waitFor();
    t.same(await raw('ui-test/config.json'), { status: 200, text: '{"replicas":1,"flag":16210313421097356768}' }, 'created, byte for byte');
    t.equal(await page.getByRole('radio', { name: 'JSON' }).isChecked(), true, 'JSON is shown pretty by default');
    t.equal(await page.locator('#value-display').textContent(), '{\n  "replicas": 1,\n  "flag": 16210313421097356768\n}', 'pretty, every digit kept');
    await page.getByRole('radio', { name: 'Text' }).check();
    t.equal(await page.locator('#value-display').textContent(), '{"replicas":1,"flag":16210313421097356768}', 'as stored');
    await page.getByRole('radio', { name: 'Base64' }).check();
    t.equal(await page.locator('#value-display').textContent(), Buffer.from('{"replicas":1,"flag":16210313421097356768}').toString('base64'));

    await page.getByRole('button', { name: 'Edit' }).click();
    await page.getByLabel('Value', { exact: true }).fill('{"replicas":2}');
    await shoot(page, 'kv-edit');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
    t.same(await raw('ui-test/config.json'), { status: 200, text: '{"replicas":2}' }, 'edited');
    await page.locator('#value-display').filter({ hasText: Buffer.from('{"replicas":2}').toString('base64') }).waitFor();
    t.pass('the view shows the new value live, still in the format chosen before the edit');
    await page.getByRole('radio', { name: 'JSON' }).check();
    await page.locator('#value-display').filter({ hasText: '"replicas": 2' }).waitFor();

    // Editing a lock-flagged key keeps its flag and its lock (a plain PUT keeps the session).
    await page.goto(`${base(follower)}/ui/kv/docker/swarm/nodes/${encodeURIComponent(SWARM_NODE)}`);
    await page.getByRole('button', { name: 'Edit' }).click();
    t.equal(await page.getByLabel('Flags').inputValue(), LOCK_FLAG, 'the form starts from the exact flag');
    await page.getByLabel('Value', { exact: true }).fill(`${SWARM_NODE} (edited)`);
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
    const entry = JSON.parse((await cluster.http(leader, 'GET', `/v1/kv/docker/swarm/nodes/${SWARM_NODE}`)).text.replace(/"Flags":(\d+)/, '"Flags":"$1"')) as { Flags: string; Session?: string }[];
    t.equal(entry[0]?.Flags, LOCK_FLAG, 'flag kept exactly');
    t.ok(entry[0]?.Session, 'lock kept');

    // Binary values are shown as base64 only.
    await cluster.http(leader, 'PUT', '/v1/kv/ui-test/blob', new Uint8Array([0, 1, 2, 0xff, 0xfe]));
    await page.goto(`${base(follower)}/ui/kv/ui-test/blob`);
    await page.locator('#value-display').filter({ hasText: 'AAEC//4=' }).waitFor();
    t.same(await page.getByRole('radio').evaluateAll((radios) => radios.map((radio) => (radio as unknown as { value: string }).value)), ['base64'], 'binary: base64 only');

    // A folder: created through the UI, filled over HTTP, deleted through the UI.
    await page.goto(`${base(follower)}/ui/kv/ui-test/`);
    await page.getByRole('button', { name: 'Create key' }).click();
    await page.getByLabel('Key name').fill('sub/');
    await page.getByRole('button', { name: 'Create', exact: true }).click();
    await page.waitForURL('**/ui/kv/ui-test/sub/');
    t.equal((await raw('ui-test/sub/')).status, 200, 'the folder key exists');
    await cluster.http(leader, 'PUT', '/v1/kv/ui-test/sub/a', 'a');
    await cluster.http(leader, 'PUT', '/v1/kv/ui-test/sub/b/c', 'c');
    await cluster.http(leader, 'PUT', '/v1/kv/ui-test/subway', 'a sibling that shares the prefix letters');
    await page.getByRole('link', { name: 'b/', exact: true }).waitFor();
    await page.getByRole('button', { name: 'Delete folder' }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete folder?' });
    await dialog.getByText('all 3 keys under it').waitFor();
    await shoot(page, 'kv-delete-folder');
    await dialog.getByRole('button', { name: 'Delete folder' }).click();
    await page.waitForURL('**/ui/kv/ui-test/');
    await page.getByRole('status').filter({ hasText: 'Deleted folder ui-test/sub/ (3 keys).' }).waitFor();
    t.equal((await cluster.http(leader, 'GET', '/v1/kv/ui-test/sub/?keys')).status, 404, 'everything under the folder is gone');
    t.equal((await raw('ui-test/subway')).status, 200, 'the sibling stayed');

    await page.getByRole('link', { name: 'config.json', exact: true }).click();
    await page.getByRole('button', { name: 'Delete key' }).click();
    await page.getByRole('dialog', { name: 'Delete key?' }).getByRole('button', { name: 'Delete key' }).click();
    await page.waitForURL('**/ui/kv/ui-test/');
    await page.getByRole('status').filter({ hasText: 'Deleted key ui-test/config.json.' }).waitFor();
    t.equal((await raw('ui-test/config.json')).status, 404, 'deleted');
  });

  await t.test('a concurrent change makes the CAS edit fail visibly', async (t) => {
    await cluster.http(leader, 'PUT', '/v1/kv/ui-test/cas', 'original');
    await page.goto(`${base(follower)}/ui/kv/ui-test/cas`);
    await page.getByRole('button', { name: 'Edit' }).click();
    await page.getByLabel('Value', { exact: true }).fill('mine');
    t.equal((await cluster.http(leader, 'PUT', '/v1/kv/ui-test/cas', 'theirs')).text, 'true', 'someone else writes meanwhile');
    await page.getByText('Someone changed this key').waitFor();
    t.pass('the editor is told live that the key moved');
    await page.getByRole('button', { name: 'Save' }).click();
    const alert = page.locator('.conflict');
    await alert.waitFor();
    t.match(await alert.textContent(), /Not saved: someone changed this key while you were editing/);
    t.equal((await raw('ui-test/cas')).text, 'theirs', 'nothing was overwritten');
    t.equal(await page.getByLabel('Value', { exact: true }).inputValue(), 'mine', 'the draft is kept');
    await page.getByText('Their value now').click();
    await alert.getByText('theirs', { exact: true }).waitFor();
    await shoot(page, 'kv-conflict');
    await page.getByRole('button', { name: 'Overwrite with my text' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
    t.equal((await raw('ui-test/cas')).text, 'mine', 'overwriting is a second, explicit choice');
  });

  await t.test('nodes: servers with status, address, last report and checks', async (t) => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Nodes' }).click();
    await page.waitForURL('**/ui/nodes');
    const table = page.getByRole('table', { name: 'Nodes' });
    await table.waitFor();
    for (const server of cluster.servers) {
      const row = table.getByRole('row').filter({ has: page.getByRole('link', { name: server.name, exact: true }) });
      await row.locator('.badge-alive').waitFor();
      t.match(await row.textContent(), /Server.*alive.*127\.0\.0\.1.*1 passing.*Agent alive and reachable/, `${server.name}: role, status, address, checks, last report`);
    }
    await page.getByText('3 servers · 0 clients').waitFor();
    await shoot(page, 'nodes');
    await table.getByRole('link', { name: leader, exact: true }).click();
    await page.waitForURL(`**/ui/nodes/${leader}`);
    await page.getByRole('table', { name: `Health checks of ${leader}` }).getByText('Serf Health Status').waitFor();
    t.pass('the node view lists its checks');
    await shoot(page, 'node');
  });

  await t.test('services: the catalog as it is, lighting up as services register', async (t) => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Services' }).click();
    await page.waitForURL('**/ui/services');
    const catalog = JSON.parse((await cluster.http(follower, 'GET', '/v1/catalog/services')).text) as Record<string, string[]>;
    for (const name of Object.keys(catalog)) await page.getByRole('link', { name, exact: true }).waitFor();
    if (Object.keys(catalog).length === 0) await page.getByText('No services are registered yet.').waitFor();
    t.pass(`the view shows the catalog's ${Object.keys(catalog).length} services`);
    await shoot(page, 'services');
    const register = await cluster.http(follower, 'PUT', '/v1/agent/service/register', JSON.stringify({ Name: 'web', ID: 'web-1', Port: 8080, Tags: ['v1'] }));
    if (register.status !== 200) {
      t.comment(`service registration answered ${register.status}: not in this build yet; the live part is skipped`);
      return;
    }
    await page.getByRole('link', { name: 'web', exact: true }).click({ timeout: 30_000 });
    t.pass('a registered service appeared live');
    await page.waitForURL('**/ui/services/web');
    await page.getByRole('table', { name: 'Instances of web' }).getByRole('link', { name: follower, exact: true }).waitFor();
    t.pass('its instance is listed with its node');
    await shoot(page, 'service');
  });

  await t.test('keyboard: skip link, visible focus, navigation; axe finds no serious violation', async (t) => {
    await page.goto(`${base(follower)}/ui/kv/`);
    await page.getByRole('link', { name: 'docker/', exact: true }).waitFor();
    await page.keyboard.press('Tab');
    t.equal(await page.locator(':focus').textContent(), 'Skip to content', 'the first Tab reaches the skip link');
    t.ok(((await page.locator(':focus').boundingBox())?.y ?? -1) >= 0, 'and shows it');
    await page.keyboard.press('Enter');
    t.equal(await page.locator(':focus').getAttribute('id'), 'main', 'the skip link moves focus to the content');
    await page.keyboard.press('Tab');
    t.equal(await page.locator(':focus').textContent(), 'Create key', 'then Tab continues inside the content');
    await page.keyboard.press('Shift+Tab');
    for (let step = 0; step < 6; step++) {
      if ((await page.locator(':focus').textContent()) === 'Nodes') break;
      await page.keyboard.press('Shift+Tab');
    }
    t.equal(await page.locator(':focus').textContent(), 'Nodes', 'the navigation is reachable by keyboard');
    const outline = await page.locator(':focus').evaluate((element) => (globalThis as unknown as { getComputedStyle(e: unknown): { outlineStyle: string; outlineWidth: string } }).getComputedStyle(element));
    t.not(outline.outlineStyle, 'none', 'keyboard focus is visible');
    await page.keyboard.press('Enter');
    await page.waitForURL('**/ui/nodes');
    await page.getByRole('table', { name: 'Nodes' }).waitFor();
    t.equal(await page.locator(':focus').textContent(), 'Nodes', 'after navigating, focus is on the new view\'s heading');
    t.equal(await page.locator(':focus').evaluate((element) => (element as unknown as { tagName: string }).tagName), 'H1');
    t.equal(await page.getByRole('link', { name: 'Nodes' }).getAttribute('aria-current'), 'page', 'the current section is marked');

    const axeSource = (createRequire(import.meta.url)('axe-core') as { source: string }).source;
    const views = ['/ui/kv/', `/ui/kv/docker/swarm/nodes/${encodeURIComponent(SWARM_NODE)}`, '/ui/nodes', `/ui/nodes/${leader}`, '/ui/services', '/ui/cluster'];
    for (const view of views) {
      for (const [width, viewport] of [['laptop', LAPTOP], ['phone', PHONE]] as const) {
        await page.setViewportSize(viewport);
        await page.goto(`${base(follower)}${view}`);
        await page.locator('.live[data-state="live"]').waitFor();
        await page.evaluate(axeSource); // CDP evaluation: not subject to the page's CSP
        const violations = await page.evaluate(async () => {
          const axe = (globalThis as unknown as { axe: { run(): Promise<{ violations: { id: string; impact: string | null; help: string; nodes: { target: unknown }[] }[] }> } }).axe;
          const result = await axe.run();
          return result.violations.map((violation) => ({ id: violation.id, impact: violation.impact, help: violation.help, targets: violation.nodes.map((node) => JSON.stringify(node.target)).slice(0, 5) }));
        });
        const serious = violations.filter((violation) => violation.impact === 'serious' || violation.impact === 'critical');
        t.same(serious, [], `${view} at ${width} width: no serious or critical axe violation`);
        for (const violation of violations) if (!serious.includes(violation)) t.comment(`axe ${view} ${width}: ${violation.impact} ${violation.id}: ${violation.help}`);
      }
    }
    await page.setViewportSize(LAPTOP);
  });

  // Opened inside a subtest: tap ends the root test when its queue is empty across an await.
  let leaderPage: Page = page;
  await t.test('cluster on the leader: term, commit index, replication per follower', async (t) => {
    leaderPage = await open(leader, '/ui/cluster');
    const table = leaderPage.getByRole('table', { name: 'Servers of the Raft configuration' });
    await table.waitFor();
    await leaderPage.locator('[data-stat="Leader"] .stat-value').filter({ hasText: leader }).waitFor();
    await leaderPage.locator('[data-stat="This agent"]').getByText('leader').waitFor();
    t.equal(await table.getByRole('row').count(), 4, 'three servers');
    await leaderPage.waitForFunction(() => (globalThis as unknown as { document: { querySelectorAll(s: string): { length: number } } }).document.querySelectorAll('.badge-passing').length >= 6);
    for (const name of followers) {
      const row = table.getByRole('row').filter({ has: leaderPage.getByText(name, { exact: true }) });
      t.match(await row.textContent(), /Follower.*\d.*\d.*(up to date|entr).*replicate.*yes/, `${name}: match index, lag, replicating, active`);
    }
    t.match(await leaderPage.locator('.note').textContent(), /is the leader/);
    await shoot(leaderPage, 'cluster-leader');

    await page.goto(`${base(follower)}/ui/cluster`);
    await page.locator('[data-stat="Leader"] .stat-value').filter({ hasText: leader }).waitFor();
    t.match(await page.locator('.note').textContent(), /is a follower/, 'a follower says where replication figures are');
    await shoot(page, 'cluster-follower');
  });

  await t.test('kill the leader: its page cannot reach it, a follower shows the new leader', async (t) => {
    expectNetworkErrors = true;
    await cluster.kill(leader);
    await leaderPage.getByRole('alert').getByText('Cannot reach the agent').waitFor({ timeout: 30_000 });
    t.pass('the dead agent\'s page says it cannot be reached');
    await leaderPage.locator('.live[data-state="retrying"]').waitFor();
    await shoot(leaderPage, 'unreachable');
    const leaderCard = page.locator('[data-stat="Leader"]');
    const newLeader = await cluster.waitFor('a new leader in the UI', async () => {
      const text = (await leaderCard.locator('.stat-value').textContent()) ?? '';
      return followers.find((name) => text.includes(name));
    }, 60_000, 250);
    t.ok(followers.includes(newLeader), `the Cluster view shows the new leader ${newLeader}`);
    t.equal(await cluster.leader(followers), newLeader, 'the one the servers agree on');
    await page.getByRole('table', { name: 'Servers of the Raft configuration' }).getByText(newLeader, { exact: true }).waitFor();
    await shoot(page, 'cluster-new-leader');

    const other = followers.find((name) => name !== follower);
    if (other === undefined) throw new Error('three servers expected');
    await cluster.kill(other);
    await page.getByRole('alert').getByText('No cluster leader.').waitFor({ timeout: 60_000 });
    await leaderCard.getByText('No leader').waitFor({ timeout: 30_000 });
    t.pass('with one server of three left, the page says there is no leader');
    await shoot(page, 'no-leader');
  });

  t.test('the pages ran clean', async (t) => {
    t.same(problems, [], 'no page errors, no console errors (CSP violations included) while the agents were up');
  });
}
