/*
 * Signing tests: the published ACS3-HMAC-SHA256 vectors and GetConnectionTicket
 * vectors that match the official Node.js SDK signer.
 */

#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "encode.h"
#include "sign.h"

#define EMPTY_HASH \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define DATE "2023-10-26T10:22:32Z"
#define NONCE "3156853299f313e23d1673dc12e1703d"
#define TICKET_HOST "appstream-center.cn-shanghai.aliyuncs.com"

static void official_v3_vector(void **state)
{
	const struct sign_header headers[] = {
		{ "host", "ecs.cn-shanghai.aliyuncs.com" },
		{ "x-acs-action", "RunInstances" },
		{ "x-acs-version", "2014-05-26" },
		{ "x-acs-date", DATE },
		{ "x-acs-signature-nonce", NONCE },
		{ "x-acs-content-sha256", EMPTY_HASH },
	};
	const char *query = "ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_"
			    "20230811.vhd&RegionId=cn-shanghai";
	char *signed_headers = NULL, *request, *authorization;
	char hash[SIGN_HEX_SIZE];

	request = sign_canonical_request("POST", "/", query, headers, 6,
					 EMPTY_HASH, &signed_headers);
	assert_non_null(request);
	sign_sha256_hex(request, strlen(request), hash);
	assert_string_equal(hash, "7ea06492da5221eba5297e897ce16e55f964061054"
				  "b7695beedaac1145b1e259");
	assert_string_equal(signed_headers,
			    "host;x-acs-action;x-acs-content-sha256;"
			    "x-acs-date;x-acs-signature-nonce;x-acs-version");

	authorization = sign_authorization("POST", "/", query, headers, 6,
					   EMPTY_HASH, "YourAccessKeyId",
					   "YourAccessKeySecret");
	assert_string_equal(
		authorization,
		"ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders="
		"host;x-acs-action;x-acs-content-sha256;x-acs-date;"
		"x-acs-signature-nonce;x-acs-version,Signature="
		"06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0");
	free(request);
	free(signed_headers);
	free(authorization);
}

/* The SDK's unit vector: an empty method, repeated header names. */
static void sdk_unit_vector(void **state)
{
	const struct sign_header headers[] = {
		{ "x-acs-test", "http" },
		{ "x-acs-TEST", "https" },
	};
	char *authorization;

	authorization = sign_authorization(
		"", "", "empty=&test=ok", headers, 2,
		"55e12e91650d2fec56ec74e1d3e4ddbfce2ef3a65890c2a19ecf88a307e76a23",
		"acesskey", "secret");
	assert_string_equal(
		authorization,
		"ACS3-HMAC-SHA256 Credential=acesskey,SignedHeaders=x-acs-test,"
		"Signature=4ab59fffe3c5738ff8a2729f90cc04fe18b02a4b15b2102cbaf92f"
		"9ff3df2ea3");
	free(authorization);
}

/* Builds the GetConnectionTicket body used by the derived vectors. */
static char *ticket_form(void)
{
	struct encode_param params[] = {
		{ "ProductType", "CloudApp" },
		{ "EndUserId", "alice" },
		{ "AppStartParam", "/q /n" },
		{ "AppInstanceGroupIdList.2", "aig-example0002" },
		{ "BizRegionId", "cn-shanghai" },
		{ "AppId", "ca-example0001" },
		{ "AppInstanceGroupIdList.1", "aig-example0001" },
	};

	return encode_form(params, sizeof(params) / sizeof(params[0]));
}

static void ticket_vector_form_body(void **state)
{
	char *body = ticket_form();
	char hash[SIGN_HEX_SIZE];
	const struct sign_header headers[] = {
		{ "host", TICKET_HOST },
		{ "content-type", "application/x-www-form-urlencoded" },
		{ "x-acs-action", "GetConnectionTicket" },
		{ "x-acs-version", "2021-09-01" },
		{ "x-acs-date", DATE },
		{ "x-acs-signature-nonce", NONCE },
		{ "x-acs-content-sha256", hash },
		{ "x-acs-security-token", "YourSecurityToken" },
	};
	char *authorization;

	assert_string_equal(
		body, "AppId=ca-example0001&AppInstanceGroupIdList.1=aig-"
		      "example0001&AppInstanceGroupIdList.2=aig-example0002&"
		      "AppStartParam=%2Fq%20%2Fn&BizRegionId=cn-shanghai&"
		      "EndUserId=alice&ProductType=CloudApp");
	sign_sha256_hex(body, strlen(body), hash);
	assert_string_equal(hash, "05207ce0bd9bd59f9c9900b3d236801420f733dc40"
				  "41f165e6703dff83705b16");

	/* A: the form body, no STS token. */
	authorization = sign_authorization("POST", "/", "", headers, 7, hash,
					   "YourAccessKeyId",
					   "YourAccessKeySecret");
	assert_non_null(strstr(authorization,
			       "SignedHeaders=content-type;host;x-acs-action;"
			       "x-acs-content-sha256;x-acs-date;"
			       "x-acs-signature-nonce;x-acs-version,"));
	assert_non_null(strstr(authorization,
			       "Signature=31033d4944c1b2bf2300465d142b2ccb1492"
			       "538def2f1213324f85c8955e64d6"));
	free(authorization);

	/* C: the same plus a signed STS token. */
	authorization = sign_authorization("POST", "/", "", headers, 8, hash,
					   "YourAccessKeyId",
					   "YourAccessKeySecret");
	assert_non_null(strstr(authorization,
			       "Signature=2db18b4692803a8191479a5ed8c7295ea6b9"
			       "8f1656c1150afdfe2842a421a676"));
	free(authorization);
	free(body);
}

/* B: the parameters in the query string, an empty body, no content-type. */
static void ticket_vector_query(void **state)
{
	char *query = ticket_form();
	const struct sign_header headers[] = {
		{ "host", TICKET_HOST },
		{ "x-acs-action", "GetConnectionTicket" },
		{ "x-acs-version", "2021-09-01" },
		{ "x-acs-date", DATE },
		{ "x-acs-signature-nonce", NONCE },
		{ "x-acs-content-sha256", EMPTY_HASH },
	};
	char *authorization;

	authorization = sign_authorization("POST", "/", query, headers, 6,
					   EMPTY_HASH, "YourAccessKeyId",
					   "YourAccessKeySecret");
	assert_non_null(strstr(authorization,
			       "Signature=7acf5106cbff44235a69c3a70665486f3bd7"
			       "2da49abd6c16120e0f20c5f69208"));
	free(authorization);
	free(query);
}

static void header_values_trimmed(void **state)
{
	const struct sign_header padded[] = { { "Host", "  example.com \t" } };
	const struct sign_header plain[] = { { "host", "example.com" } };
	char *a = sign_authorization("POST", "/", "", padded, 1, EMPTY_HASH,
				     "id", "secret");
	char *b = sign_authorization("POST", "/", "", plain, 1, EMPTY_HASH,
				     "id", "secret");

	assert_string_equal(a, b);
	free(a);
	free(b);
}

static void unsigned_headers_ignored(void **state)
{
	const struct sign_header with[] = { { "host", "example.com" },
					    { "User-Agent", "x" },
					    { "Accept", "application/json" } };
	const struct sign_header without[] = { { "host", "example.com" } };
	char *a = sign_authorization("POST", "/", "", with, 3, EMPTY_HASH,
				     "id", "secret");
	char *b = sign_authorization("POST", "/", "", without, 1, EMPTY_HASH,
				     "id", "secret");

	assert_string_equal(a, b);
	free(a);
	free(b);
}

/* The official V2 vector (DescribeDedicatedHosts) and the SDK's own
 * unit vector (Test_GetRPCSignature). */
static void official_v2_vector(void **state)
{
	struct encode_param params[] = {
		{ "AccessKeyId", "testid" },
		{ "Action", "DescribeDedicatedHosts" },
		{ "Format", "JSON" },
		{ "RegionId", "cn-beijing" },
		{ "SignatureMethod", "HMAC-SHA1" },
		{ "SignatureNonce", "edb2b34af0af9a6d14deaf7c1a5315eb" },
		{ "SignatureVersion", "1.0" },
		{ "Timestamp", "2023-03-13T08:34:30Z" },
		{ "Version", "2014-05-26" },
	};
	struct encode_param tiny[] = { { "test", "ok" } };
	char *query = encode_form(params, sizeof(params) / sizeof(params[0]));
	char *signature;

	assert_string_equal(
		query, "AccessKeyId=testid&Action=DescribeDedicatedHosts&"
		       "Format=JSON&RegionId=cn-beijing&SignatureMethod=HMAC-"
		       "SHA1&SignatureNonce=edb2b34af0af9a6d14deaf7c1a5315eb&"
		       "SignatureVersion=1.0&Timestamp=2023-03-13T08%3A34%3A30Z&"
		       "Version=2014-05-26");
	signature = sign_v2_signature("GET", query, "testsecret");
	assert_string_equal(signature, "9NaGiOspFP5UPcwX8Iwt2YJXXuk=");
	free(signature);
	free(query);

	query = encode_form(tiny, 1);
	signature = sign_v2_signature("", query, "accessKeySecret");
	assert_string_equal(signature, "jHx/oHoHNrbVfhncHEvPdHXZwHU=");
	free(signature);
	free(query);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(official_v3_vector),
		cmocka_unit_test(official_v2_vector),
		cmocka_unit_test(sdk_unit_vector),
		cmocka_unit_test(ticket_vector_form_body),
		cmocka_unit_test(ticket_vector_query),
		cmocka_unit_test(header_values_trimmed),
		cmocka_unit_test(unsigned_headers_ignored),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
