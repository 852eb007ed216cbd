/*
 * STS AssumeRole requests and responses.  The response carries
 * Credentials.AccessKeyId, AccessKeySecret, SecurityToken and Expiration
 * ("yyyy-MM-ddTHH:mm:ssZ").
 */

#include "config.h"

#include "sts.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "encode.h"

int sts_request_build(const struct daemon_config *config,
		      const char *role_arn, const char *session_name,
		      const struct api_credentials *key, time_t now,
		      struct api_request *ret_request)
{
	char duration[32];
	struct encode_param params[] = {
		{ "RoleArn", (char *)role_arn },
		{ "RoleSessionName", (char *)session_name },
		{ "DurationSeconds", duration },
	};

	snprintf(duration, sizeof(duration), "%lld",
		 (long long)config->role_duration_ms / 1000);
	return api_request_build_action(config->sts_endpoint,
					config->sts_host, key, STS_ACTION,
					STS_VERSION, params,
					sizeof(params) / sizeof(params[0]), now,
					ret_request);
}

static char *member_copy(json_object *object, const char *key)
{
	json_object *value;

	if (!json_object_object_get_ex(object, key, &value) ||
	    !json_object_is_type(value, json_type_string) ||
	    !*json_object_get_string(value))
		return NULL;
	return strdup(json_object_get_string(value));
}

static void wipe_member(json_object *object, const char *key)
{
	json_object *value;

	if (json_object_object_get_ex(object, key, &value) &&
	    json_object_is_type(value, json_type_string))
		OPENSSL_cleanse((char *)json_object_get_string(value),
				(size_t)json_object_get_string_len(value));
}

int sts_response_parse(long status, const char *body, size_t body_len,
		       time_t now, struct sts_credentials *ret_credentials,
		       struct api_result *ret_result, char **ret_error)
{
	struct sts_credentials c = { .obtained = now };
	json_object *root, *creds, *value;
	const char *expiration = NULL;
	struct tm tm = { 0 };
	int r;

	memset(ret_credentials, 0, sizeof(*ret_credentials));
	*ret_error = NULL;
	/* Errors come in the gateway's usual shape. */
	r = api_result_parse(status, body, body_len, ret_result, ret_error);
	if (r != 0)
		return r;
	api_result_clear(ret_result);

	root = json_tokener_parse(body);
	if (!root || !json_object_object_get_ex(root, "Credentials", &creds) ||
	    !json_object_is_type(creds, json_type_object)) {
		json_object_put(root);
		*ret_error = strdup("the AssumeRole response has no Credentials");
		return -EBADMSG;
	}
	c.access_key_id = member_copy(creds, "AccessKeyId");
	c.access_key_secret = member_copy(creds, "AccessKeySecret");
	c.security_token = member_copy(creds, "SecurityToken");
	if (json_object_object_get_ex(creds, "Expiration", &value) &&
	    json_object_is_type(value, json_type_string))
		expiration = json_object_get_string(value);
	if (expiration) {
		const char *end = strptime(expiration, "%Y-%m-%dT%H:%M:%SZ",
					   &tm);

		c.expiration = end && !*end ? timegm(&tm) : 0;
	}
	wipe_member(creds, "AccessKeySecret");
	wipe_member(creds, "SecurityToken");
	json_object_put(root);
	if (!c.access_key_id || !c.access_key_secret || !c.security_token ||
	    c.expiration <= now) {
		sts_credentials_clear(&c);
		*ret_error = strdup("the AssumeRole response lacks a key, a "
				    "token or a future Expiration");
		return -EBADMSG;
	}
	*ret_credentials = c;
	return 0;
}

bool sts_credentials_valid(const struct sts_credentials *c, time_t now)
{
	return c->access_key_id && now < c->expiration;
}

bool sts_credentials_fresh(const struct sts_credentials *c, time_t now)
{
	time_t margin;

	if (!sts_credentials_valid(c, now))
		return false;
	margin = (c->expiration - c->obtained) / STS_RENEW_FRACTION;
	if (margin > STS_RENEW_MARGIN_MAX_SEC)
		margin = STS_RENEW_MARGIN_MAX_SEC;
	return now < c->expiration - margin;
}

void sts_credentials_clear(struct sts_credentials *c)
{
	free(c->access_key_id);
	if (c->access_key_secret) {
		OPENSSL_cleanse(c->access_key_secret,
				strlen(c->access_key_secret));
		free(c->access_key_secret);
	}
	if (c->security_token) {
		OPENSSL_cleanse(c->security_token, strlen(c->security_token));
		free(c->security_token);
	}
	memset(c, 0, sizeof(*c));
}
