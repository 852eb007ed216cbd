/*
 * The GetConnectionTicket operation of App Streaming (appstream-center,
 * version 2021-09-01, RPC style): building the signed request and reading
 * the response.
 */

#ifndef CLOUDAPP_API_H
#define CLOUDAPP_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "profile.h"

#define API_ACTION "GetConnectionTicket"
#define API_VERSION "2021-09-01"
#define API_CONTENT_TYPE "application/x-www-form-urlencoded"

/* Deepest JSON nesting accepted in a response. */
#define API_JSON_DEPTH_MAX 16

/* Longest Ticket accepted.  Real tickets are a few hundred bytes; the
 * limit keeps the final reply under the wire protocol's 64 KiB. */
#define API_TICKET_MAX ((size_t)32 * 1024)

/* The parameters of one GetConnectionTicket call. */
struct api_ticket_call {
	const char *product_type;
	const char *end_user_id;
	const char *app_id;  /* required on the first call */
	const char *task_id; /* NULL on the first call */
	/* The optional parameters of the first call, or NULL for none. */
	const struct ticket_profile *profile;
};

struct api_credentials {
	const char *access_key_id;
	const char *access_key_secret;
	const char *security_token; /* NULL without STS */
	bool signature_v2; /* HMAC-SHA1 instead of ACS3-HMAC-SHA256 */
};

/* A signed request ready for http_client_post(). */
struct api_request {
	char *url;
	char *body;
	size_t body_len;
	/* "Name: value", NULL-terminated: at most 8 signed headers, then
	 * Authorization, Accept and Expect. */
	char *headers[12];
};

/*
 * Builds and signs a call for endpoint ("https://host[:port]") at time now
 * with a fresh random nonce.  Returns 0 or a negative errno.
 */
int api_request_build(const char *endpoint, const char *endpoint_host,
		      const struct api_credentials *credentials,
		      const struct api_ticket_call *call, time_t now,
		      struct api_request *ret_request);

struct encode_param;

/*
 * Builds and signs an RPC call of any action, with its parameters in the
 * form body.  The GetConnectionTicket call above and STS AssumeRole use
 * it.  Returns 0 or a negative errno.
 */
int api_request_build_action(const char *endpoint, const char *endpoint_host,
			     const struct api_credentials *credentials,
			     const char *action, const char *version,
			     struct encode_param *params, size_t n_params,
			     time_t now, struct api_request *ret_request);

void api_request_clear(struct api_request *request);

/* What one response said.  Strings are malloc'd; absent ones are NULL. */
struct api_result {
	long http_status;
	char *request_id;
	/* An API error: the Code and Message of a 4xx or 5xx reply. */
	char *code;
	char *message;
	/* A success. */
	char *task_id;
	char *task_status; /* "Running", "Finished" or "Failed" */
	char *ticket;	   /* wiped on clear */
	char *app_instance_group_id;
	char *app_instance_id;
	char *app_instance_persistent_id;
	char *os_type;
	char *biz_region_id;
	char *avatar_id;
	int64_t tenant_id;
	bool has_tenant_id;
};

/*
 * Reads a response.  Returns 0 for a 2xx reply with a JSON object, 1 for an
 * API error (code and message are set, from the body when it has them), or
 * -EBADMSG with a message in *ret_error when a 2xx body cannot be read or
 * a text field contains an escaped NUL.  After a negative return
 * *ret_result contains no allocation, so callers need not clear it.
 */
int api_result_parse(long http_status, const char *body, size_t body_len,
		     struct api_result *ret_result, char **ret_error);

void api_result_clear(struct api_result *result);

#endif
