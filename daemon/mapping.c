/*
 * EndUserId mapping.  App Streaming accepts only convenience account names
 * of 3 to 24 characters from a-z, 0-9 and _, so every result is checked
 * here, before any cloud call.
 */

#include "config.h"

#include "mapping.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mapping_check_template(const char *template, char **ret_error)
{
	*ret_error = NULL;
	for (const char *p = template; *p; p++) {
		if (*p != '%')
			continue;
		p++;
		if (*p == 'u' || *p == '%')
			continue;
		if (asprintf(ret_error,
			     "\"%s\" has an unknown placeholder %%%.1s; use %%u "
			     "for the user name or %%%% for a percent sign",
			     template, *p ? p : "") < 0)
			*ret_error = NULL;
		return -EINVAL;
	}
	return 0;
}

bool mapping_end_user_id_valid(const char *end_user_id)
{
	size_t len = strlen(end_user_id);

	if (len < MAPPING_END_USER_ID_MIN || len > MAPPING_END_USER_ID_MAX)
		return false;
	for (const char *p = end_user_id; *p; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		      *p == '_'))
			return false;
	}
	return true;
}

int mapping_end_user_id(const char *template, const char *user,
			char **ret_end_user_id, char **ret_error)
{
	size_t cap = strlen(template) + 1, len = 0;
	char *out;

	*ret_end_user_id = NULL;
	*ret_error = NULL;
	for (const char *p = template; *p; p++)
		if (p[0] == '%' && p[1] == 'u')
			cap += strlen(user);
	out = malloc(cap);
	if (!out)
		return -ENOMEM;

	for (const char *p = template; *p; p++) {
		if (p[0] == '%' && p[1] == 'u') {
			memcpy(out + len, user, strlen(user));
			len += strlen(user);
			p++;
		} else if (p[0] == '%' && p[1] == '%') {
			out[len++] = '%';
			p++;
		} else {
			out[len++] = *p;
		}
	}
	out[len] = '\0';

	if (!mapping_end_user_id_valid(out)) {
		if (asprintf(ret_error,
			     "user %s maps to EndUserId \"%s\", which is not a "
			     "valid convenience account name (3 to 24 "
			     "characters of a-z, 0-9 and _); change "
			     "end_user_id in the configuration",
			     user, out) < 0)
			*ret_error = NULL;
		free(out);
		return -EINVAL;
	}
	*ret_end_user_id = out;
	return 0;
}
