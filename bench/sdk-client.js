// The comparison side of the benchmark: the official Alibaba Cloud
// Node.js SDK (the generic @alicloud/openapi-client) fetches one ticket
// per user, N users at once, the way an application without
// cloudapp-ticketd would: GetConnectionTicket, then poll with the TaskId
// every POLL_MS until TaskStatus is Finished.  It prints one JSON line
// with the results and this process's CPU time and peak RSS.
//
// Usage: node sdk-client.js ENDPOINT ACCESS_KEY_ID SECRET_FILE APP_ID
//        USER_PREFIX COUNT POLL_MS
// NODE_EXTRA_CA_CERTS must name the emulator's CA.

'use strict';

const fs = require('fs');
const OpenApi = require('@alicloud/openapi-client');
const Util = require('@alicloud/tea-util');

async function getTicket(client, runtime, endUserId, appId, pollMs) {
  const params = new OpenApi.Params({
    action: 'GetConnectionTicket',
    version: '2021-09-01',
    protocol: 'HTTPS',
    pathname: '/',
    method: 'POST',
    authType: 'AK',
    style: 'RPC',
    reqBodyType: 'formData',
    bodyType: 'json',
  });
  let body = { EndUserId: endUserId, ProductType: 'CloudApp', AppId: appId };
  let calls = 0;
  for (;;) {
    const request = new OpenApi.OpenApiRequest({ body });
    const response = await client.callApi(params, request, runtime);
    calls++;
    const reply = response.body;
    if (reply.TaskStatus === 'Finished') {
      return { ticket: reply.Ticket, calls };
    }
    if (reply.TaskStatus === 'Failed') {
      throw new Error(`task failed for ${endUserId}`);
    }
    body = { EndUserId: endUserId, ProductType: 'CloudApp',
             TaskId: reply.TaskId };
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

async function main() {
  const [endpoint, accessKeyId, secretFile, appId, prefix, countText,
         pollText] = process.argv.slice(2);
  const count = Number(countText);
  const pollMs = Number(pollText);
  const secret = fs.readFileSync(secretFile, 'utf8').replace(/\r?\n$/, '');
  const client = new OpenApi.default(new OpenApi.Config({
    accessKeyId,
    accessKeySecret: secret,
    endpoint,
    protocol: 'HTTPS',
  }));
  const runtime = new Util.RuntimeOptions({
    autoretry: false,
    readTimeout: 60000,
    connectTimeout: 10000,
  });

  const cpuStart = process.cpuUsage();
  const started = Date.now();
  const results = await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const user = `${prefix}${String(i).padStart(4, '0')}`;
      const t0 = process.hrtime.bigint();
      try {
        const { ticket, calls } = await getTicket(client, runtime, user,
                                                  appId, pollMs);
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        return { user, ok: true, ms, calls, ticket };
      } catch (error) {
        return { user, ok: false, error: String(error.message || error) };
      }
    }));
  const cpu = process.cpuUsage(cpuStart);
  const wrong = results.filter((r) => r.ok &&
    fs.readFileSync(`${process.env.EMULATOR_STATE}/tickets/${r.user}`,
                    'utf8') !== r.ticket).length;
  process.stdout.write(JSON.stringify({
    count,
    ok: results.filter((r) => r.ok).length,
    wrong_ticket: wrong,
    errors: results.filter((r) => !r.ok).slice(0, 3).map((r) => r.error),
    wall_ms: Date.now() - started,
    latency_ms: results.filter((r) => r.ok).map((r) => r.ms),
    calls: results.filter((r) => r.ok).reduce((a, r) => a + r.calls, 0),
    cpu_ms: (cpu.user + cpu.system) / 1000,
    max_rss_kib: process.resourceUsage().maxRSS,
  }) + '\n');
}

main().catch((error) => {
  process.stderr.write(`sdk-client: ${error.stack || error}\n`);
  process.exit(1);
});
