/*
 * GetConnectionTicket response parsing and request building tests.
 */

#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api.h"

static int parse(long status, const char *body, struct api_result *result)
{
	char *error = NULL;
	int r = api_result_parse(status, body, strlen(body), result, &error);

	free(error);
	return r;
}

static void finished_response(void **state)
{
	struct api_result r;

	assert_int_equal(
		parse(200,
		      "{\"RequestId\":\"R1\",\"TaskId\":\"T1\",\"TaskStatus\":"
		      "\"Finished\",\"Ticket\":\"dGlja2V0\",\"AppInstanceId\":"
		      "\"ai-1\",\"OsType\":\"Windows\",\"TenantId\":"
		      "1234567890123456789}",
		      &r),
		0);
	assert_string_equal(r.request_id, "R1");
	assert_string_equal(r.task_id, "T1");
	assert_string_equal(r.task_status, "Finished");
	assert_string_equal(r.ticket, "dGlja2V0");
	assert_string_equal(r.app_instance_id, "ai-1");
	assert_true(r.has_tenant_id);
	assert_true(r.tenant_id == 1234567890123456789LL);
	assert_null(r.code);
	api_result_clear(&r);
}

static void api_error_response(void **state)
{
	struct api_result r;

	assert_int_equal(parse(400,
			       "{\"RequestId\":\"R2\",\"Code\":"
			       "\"SignatureDoesNotMatch\",\"Message\":\"no\"}",
			       &r),
			 1);
	assert_string_equal(r.code, "SignatureDoesNotMatch");
	assert_string_equal(r.message, "no");
	assert_string_equal(r.request_id, "R2");
	assert_int_equal(r.http_status, 400);
	api_result_clear(&r);
}

static void error_without_json(void **state)
{
	struct api_result r;

	assert_int_equal(parse(502, "<html>bad gateway</html>", &r), 1);
	assert_null(r.code);
	assert_int_equal(r.http_status, 502);
	assert_non_null(strstr(r.message, "no API error body"));
	api_result_clear(&r);
	assert_int_equal(parse(503, "", &r), 1);
	assert_null(r.code);
	assert_int_equal(r.http_status, 503);
	api_result_clear(&r);
}

static void error_text_cleaned(void **state)
{
	char body[4096];
	struct api_result r;
	size_t len;

	assert_int_equal(parse(400,
			       "{\"Code\":\"A\\u001b[31m\",\"Message\":"
			       "\"line one\\nline two\\r\\u007f\"}",
			       &r),
			 1);
	assert_string_equal(r.code, "A [31m");
	assert_string_equal(r.message, "line one line two  ");
	api_result_clear(&r);

	/* json-c lets an overlong form, a surrogate and a code point past
	 * U+10FFFF through; each of their bytes becomes '?'. */
	assert_int_equal(parse(400,
			       "{\"Code\":\"C\",\"Message\":\"a\xc1\xa9"
			       "b\xed\xa0\x80" "c\xf4\x90\x80\x80"
			       "d\xc3\xa9\"}",
			       &r),
			 1);
	assert_string_equal(r.message, "a??b???c????d\xc3\xa9");
	api_result_clear(&r);

	/* 2000 two-byte characters: the cut must not split one. */
	strcpy(body, "{\"Code\":\"C\",\"Message\":\"");
	len = strlen(body);
	for (int i = 0; i < 2000 && len + 8 < sizeof(body); i++) {
		body[len++] = (char)0xc3;
		body[len++] = (char)0xa9;
	}
	strcpy(body + len, "\"}");
	assert_int_equal(parse(400, body, &r), 1);
	assert_true(strlen(r.message) <= 1024);
	assert_int_equal(strlen(r.message) % 2, 0);
	api_result_clear(&r);
}

static void bad_success_bodies(void **state)
{
	static const char too_deep[] =
		"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]"
		"]]]]]]]]]]]]]]]]]]]]]";
	static const char *const bodies[] = {
		"", "[]", "\"x\"", "{\"TaskId\":", "{\"a\":\"\xff\"}", too_deep,
	};

	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		struct api_result r;

		assert_int_equal(parse(200, bodies[i], &r), -EBADMSG);
		api_result_clear(&r);
	}
}

/* A field with an escaped NUL after the Ticket: nothing may be left in
 * the result, since task.c does not clear it after a failure. */
static void escaped_nul_clears_result(void **state)
{
	static const struct {
		long status;
		const char *body;
	} cases[] = {
		{ 200, "{\"RequestId\":\"R1\",\"TaskId\":\"T1\",\"Ticket\":"
		       "\"dGlja2V0\",\"OsType\":\"Win\\u0000dows\"}" },
		{ 400, "{\"RequestId\":\"R2\",\"Code\":\"Bad\",\"Message\":"
		       "\"a\\u0000b\"}" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct api_result r;
		char *error = NULL;

		assert_int_equal(api_result_parse(cases[i].status,
						  cases[i].body,
						  strlen(cases[i].body), &r,
						  &error),
				 -EBADMSG);
		assert_non_null(error);
		assert_non_null(strstr(error, "escaped NUL"));
		assert_null(r.request_id);
		assert_null(r.code);
		assert_null(r.task_id);
		assert_null(r.ticket);
		assert_null(r.os_type);
		assert_int_equal(r.http_status, cases[i].status);
		free(error);
	}
}

static void wrong_member_types(void **state)
{
	struct api_result r;

	assert_int_equal(parse(200,
			       "{\"TaskId\":5,\"TaskStatus\":[1],\"TenantId\":"
			       "\"x\"}",
			       &r),
			 0);
	assert_null(r.task_id);
	assert_null(r.task_status);
	assert_false(r.has_tenant_id);
	api_result_clear(&r);
}

static void request_signed_and_formed(void **state)
{
	struct api_credentials credentials = { "id", "secret", NULL, false };
	struct api_ticket_call call = { .product_type = "CloudApp",
					.end_user_id = "alice",
					.app_id = "ca-1" };
	struct api_request request;
	bool has_authorization = false, has_nonce = false;

	assert_int_equal(api_request_build("https://127.0.0.1:8443",
					   "127.0.0.1:8443", &credentials,
					   &call, 1700000000, &request),
			 0);
	assert_string_equal(request.url, "https://127.0.0.1:8443/");
	assert_string_equal(request.body,
			    "AppId=ca-1&EndUserId=alice&ProductType=CloudApp");
	for (char **h = request.headers; *h; h++) {
		if (strncmp(*h, "Authorization: ACS3-HMAC-SHA256 Credential=id,",
			    46) == 0)
			has_authorization = true;
		if (strncmp(*h, "x-acs-signature-nonce: ", 23) == 0 &&
		    strlen(*h) == 23 + 32)
			has_nonce = true;
		assert_null(strstr(*h, "secret"));
	}
	assert_true(has_authorization);
	assert_true(has_nonce);
	api_request_clear(&request);
}

/* Every profile parameter reaches the first call, encoded once, and a
 * list of eleven items keeps its numbering; a poll carries the TaskId. */
static void profile_parameters_encoded(void **state)
{
	static char *groups[] = { "aig-1", "aig-2", "aig-3", "aig-4",
				  "aig-5", "aig-6", "aig-7", "aig-8",
				  "aig-9", "aig-10", "aig-11", NULL };
	struct ticket_profile profile = {
		.product_type = "CloudApp",
		.app_id = "ca-1",
		.app_version = "1.0.0",
		.app_start_param = "/q /n *~+",
		.environment_config = "{\"a\":1}",
		.biz_region_id = "cn-shanghai",
		.app_instance_persistent_id = "p-1",
		.access_type = "INTERNET",
		.app_policy_id = "pg-1",
		.app_instance_group_ids = groups,
	};
	struct api_credentials credentials = { "id", "secret", NULL, false };
	struct api_ticket_call call = { .product_type = "CloudApp",
					.end_user_id = "alice",
					.app_id = "ca-1",
					.profile = &profile };
	struct api_request request;

	assert_int_equal(api_request_build("https://h", "h", &credentials,
					   &call, 1700000000, &request),
			 0);
	assert_non_null(strstr(request.body, "AppStartParam=%2Fq%20%2Fn%20%2A~%2B"));
	assert_non_null(strstr(request.body, "EnvironmentConfig=%7B%22a%22%3A1%7D"));
	assert_non_null(strstr(request.body, "AppVersion=1.0.0"));
	assert_non_null(strstr(request.body, "BizRegionId=cn-shanghai"));
	assert_non_null(strstr(request.body, "AccessType=INTERNET"));
	assert_non_null(strstr(request.body, "AppPolicyId=pg-1"));
	assert_non_null(strstr(request.body, "AppInstancePersistentId=p-1"));
	/* Byte order puts .10 and .11 before .2, as the signature sorts. */
	assert_non_null(strstr(request.body,
			       "AppInstanceGroupIdList.1=aig-1&"
			       "AppInstanceGroupIdList.10=aig-10&"
			       "AppInstanceGroupIdList.11=aig-11&"
			       "AppInstanceGroupIdList.2=aig-2&"));
	assert_null(strstr(request.body, "TaskId"));
	api_request_clear(&request);

	call.task_id = "task-1";
	assert_int_equal(api_request_build("https://h", "h", &credentials,
					   &call, 1700000000, &request),
			 0);
	assert_string_equal(request.body,
			    "EndUserId=alice&ProductType=CloudApp&TaskId=task-1");
	api_request_clear(&request);
}

/* With STS every header fits and the list stays NULL-terminated. */
static void request_with_security_token(void **state)
{
	struct api_credentials credentials = { "id", "secret", "sts-token",
					       false };
	struct api_ticket_call call = { .product_type = "CloudApp",
					.end_user_id = "alice",
					.app_id = "ca-1" };
	struct api_request request;
	bool has_token = false, token_signed = false;
	size_t count = 0;

	assert_int_equal(api_request_build("https://h", "h", &credentials,
					   &call, 1700000000, &request),
			 0);
	for (char **h = request.headers; *h; h++) {
		count++;
		if (strcmp(*h, "x-acs-security-token: sts-token") == 0)
			has_token = true;
		if (strstr(*h, "SignedHeaders=") &&
		    strstr(*h, "x-acs-security-token"))
			token_signed = true;
	}
	assert_true(count < sizeof(request.headers) /
				    sizeof(request.headers[0]));
	assert_true(has_token);
	assert_true(token_signed);
	api_request_clear(&request);
}

/* Every request gets a new 128-bit nonce from the CSPRNG. */
static void nonces_unique(void **state)
{
	struct api_credentials credentials = { "id", "secret", NULL, false };
	struct api_ticket_call call = { .product_type = "CloudApp",
					.end_user_id = "alice",
					.app_id = "ca-1" };
	enum { COUNT = 5000 };
	static char nonces[COUNT][40];

	for (int i = 0; i < COUNT; i++) {
		struct api_request request;

		assert_int_equal(api_request_build("https://h", "h",
						   &credentials, &call,
						   1700000000, &request),
				 0);
		for (char **h = request.headers; *h; h++)
			if (strncmp(*h, "x-acs-signature-nonce: ", 23) == 0)
				snprintf(nonces[i], sizeof(nonces[i]), "%s",
					 *h + 23);
		assert_int_equal(strlen(nonces[i]), 32);
		api_request_clear(&request);
	}
	qsort(nonces, COUNT, sizeof(nonces[0]),
	      (int (*)(const void *, const void *))strcmp);
	for (int i = 1; i < COUNT; i++)
		assert_string_not_equal(nonces[i - 1], nonces[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(finished_response),
		cmocka_unit_test(api_error_response),
		cmocka_unit_test(error_without_json),
		cmocka_unit_test(error_text_cleaned),
		cmocka_unit_test(bad_success_bodies),
		cmocka_unit_test(escaped_nul_clears_result),
		cmocka_unit_test(wrong_member_types),
		cmocka_unit_test(request_signed_and_formed),
		cmocka_unit_test(profile_parameters_encoded),
		cmocka_unit_test(request_with_security_token),
		cmocka_unit_test(nonces_unique),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
