/*
 * Percent-encoding and form bodies for the OpenAPI requests.
 */

#include "config.h"

#include "encode.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool encode_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
	       c == '~';
}

char *encode_percent(const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out, *p;

	out = malloc(len * 3 + 1);
	if (!out)
		return NULL;
	p = out;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (encode_unreserved(c)) {
			*p++ = (char)c;
		} else {
			*p++ = '%';
			*p++ = hex[c >> 4];
			*p++ = hex[c & 0x0f];
		}
	}
	*p = '\0';
	return out;
}

static int compare_params(const void *a, const void *b)
{
	const struct encode_param *x = a, *y = b;

	return strcmp(x->name, y->name);
}

char *encode_form(struct encode_param *params, size_t n_params)
{
	size_t cap = 1, len = 0;
	char *out;

	qsort(params, n_params, sizeof(*params), compare_params);
	for (size_t i = 0; i < n_params; i++)
		cap += (strlen(params[i].name) + strlen(params[i].value)) * 3 +
		       2;

	out = malloc(cap);
	if (!out)
		return NULL;
	out[0] = '\0';
	for (size_t i = 0; i < n_params; i++) {
		char *name = encode_percent(params[i].name,
					    strlen(params[i].name));
		char *value = encode_percent(params[i].value,
					     strlen(params[i].value));

		if (!name || !value) {
			free(name);
			free(value);
			free(out);
			return NULL;
		}
		len += (size_t)snprintf(out + len, cap - len, "%s%s=%s",
					i ? "&" : "", name, value);
		free(name);
		free(value);
	}
	return out;
}
