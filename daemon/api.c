/*
 * GetConnectionTicket requests and responses.  Every parameter travels in
 * an application/x-www-form-urlencoded body, as the official SDKs send it;
 * the query string stays empty and the body's SHA-256 is signed.
 */

#include "config.h"

#include "api.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "encode.h"
#include "sign.h"
#include "util.h"

/* The longest Code, Message or id kept from a response, in bytes; longer
 * text is cut so that one error cannot flood the log. */
#define API_TEXT_MAX 1024

/* 128 random bits in hex, NUL included. */
#define API_NONCE_SIZE 33

static int api_nonce(char nonce[API_NONCE_SIZE])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char bytes[16];

	if (RAND_bytes(bytes, sizeof(bytes)) != 1)
		return -EIO;
	for (size_t i = 0; i < sizeof(bytes); i++) {
		nonce[2 * i] = hex[bytes[i] >> 4];
		nonce[2 * i + 1] = hex[bytes[i] & 0x0f];
	}
	nonce[API_NONCE_SIZE - 1] = '\0';
	return 0;
}

/* The most parameters of one call: EndUserId, TaskId, the profile's
 * parameters and its AppInstanceGroupIdList items. */
#define API_PARAMS_MAX (2 + 10 + PROFILE_GROUP_IDS_MAX)

/* Storage for the "AppInstanceGroupIdList.N" names. */
struct api_list_names {
	char names[PROFILE_GROUP_IDS_MAX][sizeof("AppInstanceGroupIdList.") + 4];
};

/*
 * Collects the call's parameters; values are borrowed from call.  The
 * optional parameters go with the first call only; polls carry the TaskId
 * instead.  A list becomes "Name.1", "Name.2", ..., as the SDKs flatten
 * repeated parameters.
 */
static size_t api_call_params(const struct api_ticket_call *call,
			      struct encode_param *params,
			      struct api_list_names *list)
{
	const struct ticket_profile *profile = call->profile;
	size_t n = 0;

	params[n++] = (struct encode_param){ "EndUserId",
					     (char *)call->end_user_id };
	params[n++] = (struct encode_param){ "ProductType",
					     (char *)call->product_type };
	if (call->task_id) {
		params[n++] = (struct encode_param){ "TaskId",
						     (char *)call->task_id };
		return n;
	}
	if (call->app_id)
		params[n++] = (struct encode_param){ "AppId",
						     (char *)call->app_id };
	if (!profile)
		return n;
#define X(member, api_name)                                                    \
	if (profile->member && strcmp(api_name, "ProductType") != 0 &&        \
	    strcmp(api_name, "AppId") != 0)                                    \
		params[n++] = (struct encode_param){ api_name,                 \
						     profile->member };
	PROFILE_PARAMETERS
#undef X
	for (size_t i = 0; profile->app_instance_group_ids &&
			   profile->app_instance_group_ids[i] &&
			   i < PROFILE_GROUP_IDS_MAX;
	     i++) {
		snprintf(list->names[i], sizeof(list->names[i]),
			 "AppInstanceGroupIdList.%zu", i + 1);
		params[n++] = (struct encode_param){
			list->names[i], profile->app_instance_group_ids[i]
		};
	}
	return n;
}

static int api_add_header(struct api_request *request, size_t *n,
			  const char *name, const char *value)
{
	if (asprintf(&request->headers[*n], "%s: %s", name, value) < 0) {
		request->headers[*n] = NULL;
		return -ENOMEM;
	}
	(*n)++;
	return 0;
}

/*
 * Builds a request signed with signature V2: the common parameters
 * (Action, Version, AccessKeyId, SignatureNonce, Timestamp and the rest)
 * join the call's parameters in the form body, and the HMAC-SHA1 of all
 * of them goes in Signature.  The official SDKs send the common ones in
 * the query instead; the gateway signs and reads both the same way.
 */
static int api_request_build_v2(const char *endpoint,
				const struct api_credentials *credentials,
				const char *action, const char *version,
				const struct encode_param *call_params,
				size_t n_call_params, const char *date,
				const char *nonce,
				struct api_request *ret_request)
{
	struct encode_param params[API_PARAMS_MAX + 9];
	char *canonical, *signature, *encoded;
	size_t n, n_headers = 0;
	int r = 0;

	memcpy(params, call_params, n_call_params * sizeof(*params));
	n = n_call_params;
	params[n++] = (struct encode_param){ "Action", (char *)action };
	params[n++] = (struct encode_param){ "Version", (char *)version };
	params[n++] = (struct encode_param){ "Format", "JSON" };
	params[n++] = (struct encode_param){
		"AccessKeyId", (char *)credentials->access_key_id
	};
	params[n++] = (struct encode_param){ "SignatureMethod", "HMAC-SHA1" };
	params[n++] = (struct encode_param){ "SignatureVersion", "1.0" };
	params[n++] = (struct encode_param){ "SignatureNonce", (char *)nonce };
	params[n++] = (struct encode_param){ "Timestamp", (char *)date };
	if (credentials->security_token)
		params[n++] = (struct encode_param){
			"SecurityToken", (char *)credentials->security_token
		};

	canonical = encode_form(params, n);
	if (!canonical)
		return -ENOMEM;
	signature = sign_v2_signature("POST", canonical,
				      credentials->access_key_secret);
	encoded = signature ? encode_percent(signature, strlen(signature)) :
			      NULL;
	if (!encoded ||
	    asprintf(&ret_request->body, "%s&Signature=%s", canonical,
		     encoded) < 0)
		ret_request->body = NULL;
	free(canonical);
	free(signature);
	free(encoded);
	if (!ret_request->body ||
	    asprintf(&ret_request->url, "%s/", endpoint) < 0) {
		ret_request->url = NULL;
		api_request_clear(ret_request);
		return -ENOMEM;
	}
	ret_request->body_len = strlen(ret_request->body);

	r = api_add_header(ret_request, &n_headers, "Content-Type",
			   API_CONTENT_TYPE);
	if (r == 0)
		r = api_add_header(ret_request, &n_headers, "x-acs-action",
				   action);
	if (r == 0)
		r = api_add_header(ret_request, &n_headers, "x-acs-version",
				   version);
	if (r == 0)
		r = api_add_header(ret_request, &n_headers, "Accept",
				   "application/json");
	if (r == 0)
		r = api_add_header(ret_request, &n_headers, "Expect", "");
	if (r < 0)
		api_request_clear(ret_request);
	return r;
}

int api_request_build(const char *endpoint, const char *endpoint_host,
		      const struct api_credentials *credentials,
		      const struct api_ticket_call *call, time_t now,
		      struct api_request *ret_request)
{
	struct encode_param params[API_PARAMS_MAX];
	struct api_list_names list;
	size_t n_params = api_call_params(call, params, &list);

	return api_request_build_action(endpoint, endpoint_host, credentials,
					API_ACTION, API_VERSION, params,
					n_params, now, ret_request);
}

int api_request_build_action(const char *endpoint, const char *endpoint_host,
			     const struct api_credentials *credentials,
			     const char *action, const char *version,
			     struct encode_param *params, size_t n_params,
			     time_t now, struct api_request *ret_request)
{
	struct sign_header headers[8];
	char date[32], nonce[API_NONCE_SIZE], hash[SIGN_HEX_SIZE];
	char *authorization;
	size_t n_headers = 0, n = 0;
	struct tm tm;
	int r;

	memset(ret_request, 0, sizeof(*ret_request));
	r = api_nonce(nonce);
	if (r < 0)
		return r;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (credentials->signature_v2)
		return api_request_build_v2(endpoint, credentials, action,
					    version, params, n_params, date,
					    nonce, ret_request);

	ret_request->body = encode_form(params, n_params);
	if (!ret_request->body)
		return -ENOMEM;
	ret_request->body_len = strlen(ret_request->body);
	if (asprintf(&ret_request->url, "%s/", endpoint) < 0) {
		ret_request->url = NULL;
		api_request_clear(ret_request);
		return -ENOMEM;
	}
	sign_sha256_hex(ret_request->body, ret_request->body_len, hash);

	headers[n_headers++] = (struct sign_header){ "host", endpoint_host };
	headers[n_headers++] =
		(struct sign_header){ "content-type", API_CONTENT_TYPE };
	headers[n_headers++] = (struct sign_header){ "x-acs-action", action };
	headers[n_headers++] = (struct sign_header){ "x-acs-version",
						     version };
	headers[n_headers++] = (struct sign_header){ "x-acs-date", date };
	headers[n_headers++] = (struct sign_header){ "x-acs-signature-nonce",
						     nonce };
	headers[n_headers++] = (struct sign_header){ "x-acs-content-sha256",
						     hash };
	if (credentials->security_token)
		headers[n_headers++] = (struct sign_header){
			"x-acs-security-token", credentials->security_token
		};

	authorization = sign_authorization("POST", "/", "", headers, n_headers,
					   hash, credentials->access_key_id,
					   credentials->access_key_secret);
	if (!authorization) {
		api_request_clear(ret_request);
		return -ENOMEM;
	}

	/* curl sends Host itself from the URL, with the same value. */
	r = 0;
	for (size_t i = 1; i < n_headers && r == 0; i++)
		r = api_add_header(ret_request, &n, headers[i].name,
				   headers[i].value);
	if (r == 0)
		r = api_add_header(ret_request, &n, "Authorization",
				   authorization);
	if (r == 0)
		r = api_add_header(ret_request, &n, "Accept",
				   "application/json");
	/* Keep curl from sending "Expect: 100-continue" on larger bodies. */
	if (r == 0)
		r = api_add_header(ret_request, &n, "Expect", "");
	free(authorization);
	if (r < 0)
		api_request_clear(ret_request);
	return r;
}

void api_request_clear(struct api_request *request)
{
	free(request->url);
	free(request->body);
	for (size_t i = 0; i < sizeof(request->headers) /
				       sizeof(request->headers[0]);
	     i++)
		free(request->headers[i]);
	memset(request, 0, sizeof(*request));
}

/* Copies a string member; a missing or non-string member gives NULL. */
static int api_copy_string(json_object *object, const char *key, char **ret)
{
	json_object *value;

	*ret = NULL;
	if (!json_object_object_get_ex(object, key, &value) ||
	    !json_object_is_type(value, json_type_string))
		return 0;
	/* An escaped NUL would cut the value short without a trace. */
	if (strlen(json_object_get_string(value)) !=
	    (size_t)json_object_get_string_len(value))
		return -EBADMSG;
	*ret = strdup(json_object_get_string(value));
	return *ret ? 0 : -ENOMEM;
}

/* Returns the length of the UTF-8 sequence that lead byte c starts, or 0
 * for a byte that cannot start one. */
static size_t api_utf8_length(unsigned char c)
{
	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0)
		return 2;
	if ((c & 0xf0) == 0xe0)
		return 3;
	if ((c & 0xf8) == 0xf0)
		return 4;
	return 0;
}

/*
 * Makes a text field from the cloud safe to log and to show on a terminal:
 * control characters become spaces, bytes that are not part of valid
 * UTF-8 become '?', and text past API_TEXT_MAX bytes is cut at a character
 * boundary.  json-c 0.16 checks UTF-8 only loosely: it passes overlong
 * forms, surrogates and code points past U+10FFFF.
 */
static void api_clean_text(char *text)
{
	size_t len = strlen(text);

	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)text[i];
		size_t n = api_utf8_length(c);

		if (c < 0x20 || c == 0x7f) {
			text[i++] = ' ';
		} else if (n == 0 || n > len - i ||
			   !cloudapp_utf8_valid(text + i, n)) {
			text[i++] = '?';
		} else {
			i += n;
		}
	}
	if (len > API_TEXT_MAX) {
		len = API_TEXT_MAX;
		/* Step back over continuation bytes (10xxxxxx). */
		while (len > 0 && ((unsigned char)text[len] & 0xc0) == 0x80)
			len--;
		text[len] = '\0';
	}
}

/*
 * Copies the text fields and TenantId of body into result.  On failure
 * result is cleared, so that no copy of a ticket read before the bad
 * field is left behind, and *ret_error names that field.
 */
static int api_copy_fields(json_object *body, struct api_result *result,
			   char **ret_error)
{
	struct {
		const char *key;
		char **field;
	} fields[] = {
		{ "RequestId", &result->request_id },
		{ "Code", &result->code },
		{ "Message", &result->message },
		{ "TaskId", &result->task_id },
		{ "TaskStatus", &result->task_status },
		{ "Ticket", &result->ticket },
		{ "AppInstanceGroupId", &result->app_instance_group_id },
		{ "AppInstanceId", &result->app_instance_id },
		{ "AppInstancePersistentId",
		  &result->app_instance_persistent_id },
		{ "OsType", &result->os_type },
		{ "BizRegionId", &result->biz_region_id },
		{ "AvatarId", &result->avatar_id },
	};
	json_object *tenant;
	int r;

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		r = api_copy_string(body, fields[i].key, fields[i].field);
		if (r < 0) {
			long status = result->http_status;

			api_result_clear(result);
			result->http_status = status;
			if (r == -EBADMSG &&
			    asprintf(ret_error,
				     "the response's %s contains an escaped "
				     "NUL character",
				     fields[i].key) < 0)
				*ret_error = NULL;
			return r;
		}
		/* The ticket is opaque and passed on unchanged. */
		if (*fields[i].field && fields[i].field != &result->ticket)
			api_clean_text(*fields[i].field);
	}
	if (json_object_object_get_ex(body, "TenantId", &tenant) &&
	    json_object_is_type(tenant, json_type_int)) {
		result->tenant_id = json_object_get_int64(tenant);
		result->has_tenant_id = true;
	}
	return 0;
}

/* Parses body as a JSON object, or returns NULL. */
static json_object *api_parse_json(const char *body, size_t body_len)
{
	json_tokener *tokener;
	json_object *object;

	if (body_len == 0 || body_len > INT32_MAX)
		return NULL;
	tokener = json_tokener_new_ex(API_JSON_DEPTH_MAX);
	if (!tokener)
		return NULL;
	json_tokener_set_flags(tokener, JSON_TOKENER_VALIDATE_UTF8);
	object = json_tokener_parse_ex(tokener, body, (int)body_len);
	if (object && (json_tokener_get_error(tokener) != json_tokener_success ||
		       !json_object_is_type(object, json_type_object))) {
		json_object_put(object);
		object = NULL;
	}
	json_tokener_free(tokener);
	return object;
}

/* An error status without the API's JSON error, such as a proxy's HTML
 * page: there is no Code, so none is made up. */
static int api_error_without_body(struct api_result *result)
{
	result->message = strdup("the response has no API error body");
	return result->message ? 1 : -ENOMEM;
}

int api_result_parse(long http_status, const char *body, size_t body_len,
		     struct api_result *ret_result, char **ret_error)
{
	json_object *object;
	int r;

	memset(ret_result, 0, sizeof(*ret_result));
	*ret_error = NULL;
	ret_result->http_status = http_status;

	object = api_parse_json(body, body_len);
	if (http_status < 200 || http_status >= 300) {
		if (object)
			r = api_copy_fields(object, ret_result, ret_error);
		else
			r = 0;
		json_object_put(object);
		if (r < 0)
			return r;
		if (!ret_result->code) {
			free(ret_result->message);
			ret_result->message = NULL;
			return api_error_without_body(ret_result);
		}
		if (!ret_result->message)
			ret_result->message = strdup("");
		return ret_result->message ? 1 : -ENOMEM;
	}

	if (!object) {
		if (asprintf(ret_error,
			     "HTTP status %ld with a body that is not a JSON "
			     "object (%zu bytes)",
			     http_status, body_len) < 0)
			*ret_error = NULL;
		return -EBADMSG;
	}
	r = api_copy_fields(object, ret_result, ret_error);
	/* json-c keeps its own copy of the ticket; wipe it before freeing. */
	{
		json_object *ticket;

		if (json_object_object_get_ex(object, "Ticket", &ticket) &&
		    json_object_is_type(ticket, json_type_string))
			OPENSSL_cleanse((char *)json_object_get_string(ticket),
				      (size_t)json_object_get_string_len(ticket));
	}
	json_object_put(object);
	return r;
}

void api_result_clear(struct api_result *result)
{
	free(result->request_id);
	free(result->code);
	free(result->message);
	free(result->task_id);
	free(result->task_status);
	if (result->ticket) {
		OPENSSL_cleanse(result->ticket, strlen(result->ticket));
		free(result->ticket);
	}
	free(result->app_instance_group_id);
	free(result->app_instance_id);
	free(result->app_instance_persistent_id);
	free(result->os_type);
	free(result->biz_region_id);
	free(result->avatar_id);
	memset(result, 0, sizeof(*result));
}
