#!/bin/bash
# Cross-checks the daemon's signing with the official Alibaba Cloud
# Node.js SDK: (a) the official signer (@alicloud/openapi-util) must
# produce the same Authorization header as the daemon for a table of
# requests with awkward values, and (b) the official client
# (@alicloud/openapi-client) must be accepted by the emulator with the
# right secret and rejected with a wrong one.  Needs node and the SDK
# packages, which .ci/run installs with "npm install" in bench/.
set -u
. "$top_srcdir/tests/integration/lib.sh"

modules=$top_srcdir/bench/node_modules
command -v node > /dev/null || skip "node is not installed"
[ -d "$modules/@alicloud/openapi-util" ] && [ -d "$modules/@alicloud/openapi-client" ] ||
	skip "the official SDK is not installed; run: cd bench && npm install"
[ -x "$top_builddir/tests/sdk/sign_request" ] ||
	fail "build first: tests/sdk/sign_request is missing"
export NODE_PATH=$modules

WORK=$(mktemp -d /tmp/cloudapp-sdk.XXXXXX)
trap lib_cleanup EXIT

# Values the encoder and the signer must agree on with the SDK.
cat > "$WORK/cases.jsonl" <<'CASES'
{"end_user_id": "alice", "app_id": "ca-example0001", "secret": "YourAccessKeySecret"}
{"end_user_id": "bob_1", "app_id": "ca-1", "secret": "s", "params": {"app_start_param": "/q /n"}}
{"end_user_id": "carol", "app_id": "ca-1", "secret": "s", "params": {"app_start_param": "a+b*c~d!e'f(g)h/i"}}
{"end_user_id": "dave", "app_id": "ca-1", "secret": "s", "params": {"environment_config": "{\"lang\": \"zh-CN\", \"title\": \"云应用 ü\"}"}}
{"end_user_id": "erin", "app_id": "ca-1", "secret": "s", "params": {"app_version": "0", "app_policy_id": "false", "app_start_param": "%20 %25"}}
{"end_user_id": "frank", "app_id": "ca-1", "secret": "s", "groups": ["aig-1", "aig-2", "aig-3", "aig-4", "aig-5", "aig-6", "aig-7", "aig-8", "aig-9", "aig-10", "aig-11"]}
{"end_user_id": "grace", "app_id": "ca-1", "secret": "s", "token": "CAIS+token/with=chars"}
{"end_user_id": "heidi", "task_id": "f3d1b31c-605e-4d04-a896", "secret": "a secret with spaces"}
{"end_user_id": "ivan", "app_id": "ca-1", "secret": "s", "params": {"biz_region_id": "cn-shanghai", "access_type": "INTERNET", "app_instance_persistent_id": "p-1"}, "groups": ["aig-1"]}
{"end_user_id": "judy", "app_id": "ca-1", "secret": "v2 secret", "v2": true, "params": {"app_start_param": "a+b*c~d!e'f(g)h/i 云"}}
{"end_user_id": "ken", "task_id": "task-1", "secret": "s", "v2": true, "token": "CAIS+token/with=chars"}
{"end_user_id": "lena", "app_id": "ca-1", "secret": "s", "v2": true, "groups": ["aig-1", "aig-2", "aig-3", "aig-4", "aig-5", "aig-6", "aig-7", "aig-8", "aig-9", "aig-10", "aig-11"]}
CASES

signatures_match() {
	"$top_builddir/tests/sdk/sign_request" < "$WORK/cases.jsonl" \
		> "$WORK/signed.jsonl" || return 1
	node "$top_srcdir/tests/sdk/cross-check.js" "$WORK/cases.jsonl" \
		< "$WORK/signed.jsonl"
}

sdk_against_emulator() {
	start_emulator 0.2
	NODE_EXTRA_CA_CERTS=$WORK/certs/ca.pem EMULATOR_STATE=$EMULATOR_STATE \
		node "$top_srcdir/bench/sdk-client.js" "127.0.0.1:$EMULATOR_PORT" \
		"$TEST_ACCESS_KEY_ID" "$WORK/emulator-secret" "$TEST_APP_ID" \
		sdk_ 2 100 > "$WORK/sdk-good.json" || return 1
	printf 'wrong-secret\n' > "$WORK/wrong-secret"
	NODE_EXTRA_CA_CERTS=$WORK/certs/ca.pem EMULATOR_STATE=$EMULATOR_STATE \
		node "$top_srcdir/bench/sdk-client.js" "127.0.0.1:$EMULATOR_PORT" \
		"$TEST_ACCESS_KEY_ID" "$WORK/wrong-secret" "$TEST_APP_ID" \
		bad_ 1 100 > "$WORK/sdk-bad.json" || return 1
	python3 - "$WORK/sdk-good.json" "$WORK/sdk-bad.json" <<'PY'
import json, sys
good = json.load(open(sys.argv[1]))
bad = json.load(open(sys.argv[2]))
print(f"right secret: {good['ok']} of {good['count']} tickets, "
      f"{good['wrong_ticket']} wrong; wrong secret: {bad['errors']}")
sys.exit(0 if good["ok"] == 2 and good["wrong_ticket"] == 0
         and bad["ok"] == 0
         and "SignatureDoesNotMatch" in " ".join(bad["errors"]) else 1)
PY
}

check "signatures match the official SDK" signatures_match
check "official client against the emulator" sdk_against_emulator

check_summary
