/*
 * Fuzzes the parsers of cloud responses: api_result_parse() for
 * GetConnectionTicket and sts_response_parse() for AssumeRole, called as
 * task.c calls them.  The text fields that reach logs and clients must
 * come out as valid UTF-8 without control characters, within the length
 * limit, and must fit in a wire-protocol reply.
 *
 * Input: one byte that picks the HTTP status, then the response body.
 */

#include "config.h"

#include "fuzz.h"

#include <errno.h>
#include <string.h>

#include "api.h"
#include "protocol.h"
#include "sts.h"
#include "util.h"

/* Maximum length of a text field from api.c, API_TEXT_MAX there. */
#define FUZZ_TEXT_MAX 1024

/* A fixed clock for the Expiration check of AssumeRole. */
#define FUZZ_NOW 1767225600 /* 2026-01-01T00:00:00Z */

static const long statuses[] = {
	200, 201, 204, 299, 300, 302, 400, 403,
	404, 409, 429, 500, 502, 503, 0,   199,
};

static void check_text(const char *text)
{
	size_t len;

	if (!text)
		return;
	len = strlen(text);
	FUZZ_ASSERT(len <= FUZZ_TEXT_MAX);
	FUZZ_ASSERT(cloudapp_utf8_valid(text, len));
	for (const char *p = text; *p; p++)
		FUZZ_ASSERT((unsigned char)*p >= 0x20 && *p != 0x7f);
}

/* Builds a reply the way the daemon passes a result on, and reads it
 * back as a client would. */
static void check_reply(const struct api_result *result)
{
	const char *fields[] = {
		result->request_id,	 result->code,
		result->message,	 result->task_id,
		result->task_status,	 result->app_instance_group_id,
		result->app_instance_id, result->app_instance_persistent_id,
		result->os_type,	 result->biz_region_id,
		result->avatar_id,
	};
	struct cloudapp_msgbuf buf;
	json_object *parameters = json_object_new_object();
	json_object *reply = json_object_new_object();
	json_object *copy = NULL;
	char *wire;
	size_t len;

	FUZZ_ASSERT(parameters && reply);
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		char key[16];

		if (!fields[i])
			continue;
		snprintf(key, sizeof(key), "f%zu", i);
		json_object_object_add(parameters, key,
				       json_object_new_string(fields[i]));
	}
	json_object_object_add(reply, "parameters", parameters);
	wire = cloudapp_message_serialize(reply, &len);
	FUZZ_ASSERT(wire);
	cloudapp_msgbuf_init(&buf);
	FUZZ_ASSERT(cloudapp_msgbuf_feed(&buf, wire, len) == 0);
	FUZZ_ASSERT(cloudapp_msgbuf_next(&buf, &copy) == 1);
	FUZZ_ASSERT(json_object_equal(reply, copy));
	json_object_put(copy);
	json_object_put(reply);
	cloudapp_msgbuf_free(&buf);
	free(wire);
}

static void check_result(const struct api_result *result)
{
	check_text(result->request_id);
	check_text(result->code);
	check_text(result->message);
	check_text(result->task_id);
	check_text(result->task_status);
	check_text(result->app_instance_group_id);
	check_text(result->app_instance_id);
	check_text(result->app_instance_persistent_id);
	check_text(result->os_type);
	check_text(result->biz_region_id);
	check_text(result->avatar_id);
	check_reply(result);
}

/* GetConnectionTicket, as task_on_response() reads it: on a negative
 * return the result is left alone, so nothing may be left in it. */
static void fuzz_ticket_response(long status, const char *body, size_t len)
{
	struct api_result result;
	char *error = NULL;
	int r = api_result_parse(status, body, len, &result, &error);

	if (r < 0) {
		FUZZ_ASSERT(r == -EBADMSG || r == -ENOMEM);
		free(error);
		return;
	}
	FUZZ_ASSERT(!error);
	FUZZ_ASSERT(result.http_status == status);
	if (r == 1) {
		FUZZ_ASSERT(status < 200 || status >= 300);
		FUZZ_ASSERT(result.message);
	} else {
		FUZZ_ASSERT(r == 0);
		FUZZ_ASSERT(status >= 200 && status < 300);
	}
	check_result(&result);
	api_result_clear(&result);
}

/* AssumeRole, as registry_on_sts_response() in task.c reads it: the
 * result is cleared after any failure. */
static void fuzz_sts_response(long status, const char *body, size_t len)
{
	struct sts_credentials credentials;
	struct api_result result = { 0 };
	char *error = NULL;
	int r = sts_response_parse(status, body, len, FUZZ_NOW, &credentials,
				   &result, &error);

	if (r < 0) {
		FUZZ_ASSERT(!credentials.access_key_id);
		api_result_clear(&result);
		free(error);
		return;
	}
	FUZZ_ASSERT(!error);
	if (r == 1) {
		FUZZ_ASSERT(result.message);
		check_result(&result);
		api_result_clear(&result);
		return;
	}
	FUZZ_ASSERT(r == 0);
	FUZZ_ASSERT(credentials.access_key_id);
	FUZZ_ASSERT(credentials.access_key_secret);
	FUZZ_ASSERT(credentials.security_token);
	FUZZ_ASSERT(credentials.expiration > FUZZ_NOW);
	FUZZ_ASSERT(sts_credentials_valid(&credentials, FUZZ_NOW));
	sts_credentials_clear(&credentials);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	long status;
	char *body;

	if (size < 1)
		return 0;
	status = statuses[data[0] % (sizeof(statuses) / sizeof(statuses[0]))];
	/* http.c hands over the body with a NUL after it. */
	body = fuzz_strndup(data + 1, size - 1);
	if (!body)
		return 0;
	fuzz_ticket_response(status, body, size - 1);
	fuzz_sts_response(status, body, size - 1);
	free(body);
	return 0;
}
