// Docker HEALTHCHECK for a Conclave agent: exits 0 only when the local HTTP API answers
// GET /v1/status/leader with a non-empty string (a leader is known). No curl needed.
// CONCLAVE_HEALTHCHECK_URL overrides the address (default http://127.0.0.1:8500).
import http from 'node:http';

const base = process.env.CONCLAVE_HEALTHCHECK_URL ?? 'http://127.0.0.1:8500';
const fail = (why) => {
  process.stderr.write(`unhealthy: ${why}\n`);
  process.exit(1);
};
const request = http.get(`${base}/v1/status/leader`, { timeout: 2000 }, (response) => {
  let body = '';
  response.setEncoding('utf8');
  response.on('data', (chunk) => (body += chunk));
  response.on('end', () => {
    if (response.statusCode !== 200) fail(`HTTP ${response.statusCode}: ${body.trim()}`);
    let leader;
    try {
      leader = JSON.parse(body);
    } catch {
      fail(`not JSON: ${body.slice(0, 100)}`);
    }
    if (typeof leader !== 'string' || leader === '') fail('no cluster leader');
    process.stdout.write(`leader ${leader}\n`);
    process.exit(0);
  });
});
request.on('timeout', () => request.destroy(new Error('timed out')));
request.on('error', (error) => fail(error.message));
