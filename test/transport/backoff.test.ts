import t from 'tap';
import { Prng } from '../../src/lib/prng.js';
import { formatAddress, parseAddress } from '../../src/transport/address.js';
import { backoffDelayMs } from '../../src/transport/backoff.js';

t.test('backoff doubles from min to max, jittered within the upper half of each step', async (t) => {
  t.equal(backoffDelayMs(1, () => 0, 100, 2000), 50, 'the fixed half of the first step');
  t.equal(backoffDelayMs(1, () => 0.999_999, 100, 2000), 100);
  t.equal(backoffDelayMs(3, () => 0, 100, 2000), 200, 'step 3 is 4 × min');
  t.equal(backoffDelayMs(50, () => 0, 100, 2000), 1000, 'capped: half of max at least');
  t.equal(backoffDelayMs(1_000_000, () => 0.999_999, 100, 2000), 2000, 'never above max, whatever the attempt');
  const prng = new Prng(5);
  const delays = Array.from({ length: 100 }, () => backoffDelayMs(10, () => prng.nextFloat(), 100, 2000));
  t.ok(delays.every((delay) => delay >= 1000 && delay <= 2000));
  t.ok(new Set(delays).size > 50, 'jitter spreads redials');
  t.throws(() => backoffDelayMs(0, () => 0, 100, 2000), 'attempts count from 1');
});

t.test('addresses: host:port, [ipv6]:port, and nothing else', async (t) => {
  t.same(parseAddress('127.0.0.1:8300'), { host: '127.0.0.1', port: 8300 });
  t.same(parseAddress('consul-1.internal:8300'), { host: 'consul-1.internal', port: 8300 });
  t.same(parseAddress('[::1]:8300'), { host: '::1', port: 8300 });
  for (const bad of ['', '8300', ':8300', 'host:', 'host:0', 'host:65536', 'host:83a0', '::1:8300', '[]:1', 'host:-1']) {
    t.equal(parseAddress(bad), null, `refused: "${bad}"`);
  }
  t.equal(formatAddress('::1', 8300), '[::1]:8300');
  t.equal(formatAddress('10.0.0.5', 8300), '10.0.0.5:8300');
});
