/*
 * Temporary credentials from STS AssumeRole (sts, version 2015-04-01): with
 * ram_role_arn the configured key may only assume that role, and the
 * ticket calls are signed with what AssumeRole returns.
 */

#ifndef CLOUDAPP_STS_H
#define CLOUDAPP_STS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "api.h"
#include "conf.h"

#define STS_ACTION "AssumeRole"
#define STS_VERSION "2015-04-01"

/* Temporary credentials are renewed when less than this part of their
 * lifetime, and at most STS_RENEW_MARGIN_MAX_SEC, is left. */
#define STS_RENEW_FRACTION 4
#define STS_RENEW_MARGIN_MAX_SEC 300

struct sts_credentials {
	char *access_key_id;
	char *access_key_secret; /* wiped on clear */
	char *security_token;	 /* wiped on clear */
	time_t obtained;
	time_t expiration;
};

/* Builds the AssumeRole call for role_arn, signed with key. */
int sts_request_build(const struct daemon_config *config,
		      const char *role_arn, const char *session_name,
		      const struct api_credentials *key, time_t now,
		      struct api_request *ret_request);

/*
 * Reads an AssumeRole response.  Returns 0 with the credentials, 1 for an
 * API error (in *ret_result, as api_result_parse() gives it), or a
 * negative errno with *ret_error for a response that cannot be used.
 */
int sts_response_parse(long status, const char *body, size_t body_len,
		       time_t now, struct sts_credentials *ret_credentials,
		       struct api_result *ret_result, char **ret_error);

/* True while the credentials are valid at now. */
bool sts_credentials_valid(const struct sts_credentials *credentials,
			   time_t now);

/* True while they need no renewal yet. */
bool sts_credentials_fresh(const struct sts_credentials *credentials,
			   time_t now);

void sts_credentials_clear(struct sts_credentials *credentials);

#endif
