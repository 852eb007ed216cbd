// Signs the requests that sign_request (the daemon's code) built, with
// the official Alibaba Cloud SDK's signer (@alicloud/openapi-util
// getAuthorization, ACS3-HMAC-SHA256), and requires the Authorization
// headers to be byte-identical.  Reads sign_request's output on stdin and
// the cases (for the secrets) from the file in argv[2].

'use strict';

const fs = require('fs');
const OpenApiUtil = require('@alicloud/openapi-util').default;

const cases = fs.readFileSync(process.argv[2], 'utf8').trim().split('\n')
  .map((line) => JSON.parse(line));
const signed = fs.readFileSync(0, 'utf8').trim().split('\n')
  .map((line) => JSON.parse(line));
let failures = 0;

// Signature V2: the official getRPCSignature over every body parameter
// but Signature must give the daemon's Signature.
function checkV2(request, i) {
  const params = Object.fromEntries(new URLSearchParams(request.body));
  const ours = params.Signature;
  delete params.Signature;
  const official = OpenApiUtil.getRPCSignature(params, 'POST',
                                               cases[i].secret);
  if (official !== ours) {
    failures++;
    process.stdout.write(`case ${i + 1} (V2): differs\n  ours:     ` +
      `${ours}\n  official: ${official}\n`);
  }
}

signed.forEach((request, i) => {
  if (cases[i].v2) {
    checkV2(request, i);
    return;
  }
  const headers = {};
  for (const [name, value] of Object.entries(request.headers)) {
    headers[name] = value;
  }
  const official = OpenApiUtil.getAuthorization(
    { pathname: '/', method: 'POST', query: {}, headers },
    'ACS3-HMAC-SHA256', headers['x-acs-content-sha256'],
    'YourAccessKeyId', cases[i].secret);
  if (official !== request.authorization) {
    failures++;
    process.stdout.write(`case ${i + 1}: differs\n  ours:     ` +
      `${request.authorization}\n  official: ${official}\n`);
  }
});
process.stdout.write(`${signed.length - failures} of ${signed.length} ` +
  'signatures identical to the official SDK\n');
process.exit(failures === 0 ? 0 : 1);
