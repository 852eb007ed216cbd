/*
 * Builds signed GetConnectionTicket requests with the daemon's own code,
 * for the cross-check against the official SDK's signer.  Reads one JSON
 * object per line on stdin:
 *   {"end_user_id": ..., "app_id": ..., "task_id": ..., "secret": ...,
 *    "token": ..., "params": {"app_start_param": ..., ...},
 *    "groups": [...]}
 * ("v2": true signs with signature V2) and writes one JSON object per
 * line: the signed headers, the host, the body and the Authorization
 * header (none with V2, whose Signature is in the body).
 */

#include "config.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "profile.h"

#define HOST "appstream-center.cn-shanghai.aliyuncs.com"

static const char *member(json_object *object, const char *key)
{
	json_object *value;

	if (!json_object_object_get_ex(object, key, &value))
		return NULL;
	return json_object_get_string(value);
}

static void sign_one(json_object *in)
{
	struct ticket_profile profile = { 0 };
	json_object *params = NULL, *groups = NULL, *out, *headers;
	char **group_list = NULL;
	struct api_request request;
	struct api_credentials credentials = {
		.access_key_id = "YourAccessKeyId",
		.access_key_secret = member(in, "secret"),
		.security_token = member(in, "token"),
	};
	json_object *v2 = NULL;
	struct api_ticket_call call = {
		.product_type = "CloudApp",
		.end_user_id = member(in, "end_user_id"),
		.app_id = member(in, "app_id"),
		.task_id = member(in, "task_id"),
		.profile = &profile,
	};

	credentials.signature_v2 = json_object_object_get_ex(in, "v2", &v2) &&
				   json_object_get_boolean(v2);
	profile.product_type = "CloudApp";
	profile.app_id = (char *)call.app_id;
	if (json_object_object_get_ex(in, "params", &params)) {
#define X(field, api_name) profile.field = (char *)member(params, #field);
		PROFILE_PARAMETERS
#undef X
		profile.product_type = "CloudApp";
		profile.app_id = (char *)call.app_id;
	}
	if (json_object_object_get_ex(in, "groups", &groups)) {
		size_t n = json_object_array_length(groups);

		group_list = calloc(n + 1, sizeof(char *));
		for (size_t i = 0; i < n; i++)
			group_list[i] = (char *)json_object_get_string(
				json_object_array_get_idx(groups, i));
		profile.app_instance_group_ids = group_list;
	}

	if (api_request_build("https://" HOST, HOST, &credentials, &call,
			      time(NULL), &request) < 0) {
		fprintf(stderr, "sign_request: cannot build a request\n");
		exit(1);
	}
	out = json_object_new_object();
	headers = json_object_new_object();
	json_object_object_add(headers, "host", json_object_new_string(HOST));
	for (char **h = request.headers; *h; h++) {
		char *colon = strchr(*h, ':');

		*colon = '\0';
		if (strcmp(*h, "Authorization") == 0)
			json_object_object_add(
				out, "authorization",
				json_object_new_string(colon + 2));
		else
			json_object_object_add(
				headers, *h, json_object_new_string(colon + 2));
	}
	json_object_object_add(out, "headers", headers);
	json_object_object_add(out, "body",
			       json_object_new_string(request.body));
	puts(json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN));
	json_object_put(out);
	api_request_clear(&request);
	free(group_list);
}

int main(void)
{
	char *line = NULL;
	size_t cap = 0;

	while (getline(&line, &cap, stdin) > 0) {
		json_object *in = json_tokener_parse(line);

		if (!in) {
			fprintf(stderr, "sign_request: invalid JSON input\n");
			return 1;
		}
		sign_one(in);
		json_object_put(in);
	}
	free(line);
	return 0;
}
