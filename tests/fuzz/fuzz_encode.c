/*
 * Fuzzes the percent-encoder and the form body built from request
 * parameters.  The encoded text must decode back to the input, keep only
 * A-Z a-z 0-9 - _ . ~ literal and use uppercase hex; the form body must
 * list every parameter, sorted by name.
 *
 * Input: the bytes to encode.  Split at NUL and newline bytes, the same
 * bytes are also read as alternating names and values of a form.
 */

#include "config.h"

#include "fuzz.h"

#include <stdbool.h>
#include <string.h>

#include "encode.h"

/* Maximum number of parameters read from one input. */
#define FUZZ_PARAMS_MAX ((size_t)64)

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
	       c == '~';
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1; /* lowercase hex is not allowed either */
}

/* Decodes len bytes of encoded text into out; returns the decoded
 * length.  Stops the process on anything the encoder must not emit. */
static size_t decode(const char *encoded, size_t len, uint8_t *out)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		if (encoded[i] != '%') {
			FUZZ_ASSERT(unreserved((unsigned char)encoded[i]));
			out[n++] = (uint8_t)encoded[i];
			continue;
		}
		FUZZ_ASSERT(i + 2 < len);
		FUZZ_ASSERT(hex_value(encoded[i + 1]) >= 0 &&
			    hex_value(encoded[i + 2]) >= 0);
		out[n] = (uint8_t)(hex_value(encoded[i + 1]) * 16 +
				   hex_value(encoded[i + 2]));
		/* A byte that may stay literal must stay literal. */
		FUZZ_ASSERT(!unreserved(out[n]));
		n++;
		i += 2;
	}
	return n;
}

static void fuzz_percent(const uint8_t *data, size_t size)
{
	char *encoded = encode_percent((const char *)data, size);
	size_t len, expected = 0;
	uint8_t *decoded;

	FUZZ_ASSERT(encoded);
	for (size_t i = 0; i < size; i++)
		expected += unreserved(data[i]) ? 1 : 3;
	len = strlen(encoded);
	FUZZ_ASSERT(len == expected);
	decoded = malloc(size + 1);
	FUZZ_ASSERT(decoded);
	FUZZ_ASSERT(decode(encoded, len, decoded) == size);
	FUZZ_ASSERT(size == 0 || memcmp(decoded, data, size) == 0);
	free(decoded);
	free(encoded);
}

/* Checks that one "name=value" pair of the form decodes to a parameter
 * and returns its decoded name, malloc'd. */
static char *check_pair(const char *pair, size_t len,
			const struct encode_param *params, size_t n_params)
{
	const char *equals = memchr(pair, '=', len);
	uint8_t *name, *value;
	size_t name_len, value_len;
	bool found = false;

	FUZZ_ASSERT(equals);
	name = malloc(len + 1);
	value = malloc(len + 1);
	FUZZ_ASSERT(name && value);
	name_len = decode(pair, (size_t)(equals - pair), name);
	value_len = decode(equals + 1, len - (size_t)(equals - pair) - 1,
			   value);
	name[name_len] = '\0';
	value[value_len] = '\0';
	for (size_t i = 0; i < n_params && !found; i++)
		found = strcmp(params[i].name, (char *)name) == 0 &&
			strcmp(params[i].value, (char *)value) == 0;
	FUZZ_ASSERT(found);
	free(value);
	return (char *)name;
}

static void fuzz_form(const uint8_t *data, size_t size)
{
	struct encode_param params[FUZZ_PARAMS_MAX];
	char *text = fuzz_strndup(data, size), *form, *p, *previous = NULL;
	size_t n = 0, start = 0, pairs = 0;

	FUZZ_ASSERT(text);
	/* Split at NUL and newline bytes into name, value, name, ... */
	for (size_t i = 0; i <= size && n < 2 * FUZZ_PARAMS_MAX; i++) {
		if (i < size && text[i] != '\n' && text[i] != '\0')
			continue;
		text[i] = '\0';
		if (n % 2 == 0)
			params[n / 2].name = text + start;
		else
			params[n / 2].value = text + start;
		n++;
		start = i + 1;
	}
	n /= 2;

	form = encode_form(params, n);
	FUZZ_ASSERT(form);
	p = form;
	for (size_t i = 0; i < n; i++) {
		size_t len = strcspn(p, "&");
		char *name = check_pair(p, len, params, n);

		/* Sorted by name in byte order, as the signature needs. */
		if (previous)
			FUZZ_ASSERT(strcmp(previous, name) <= 0);
		free(previous);
		previous = name;
		pairs++;
		p += len;
		if (*p == '&')
			p++;
	}
	FUZZ_ASSERT(*p == '\0');
	FUZZ_ASSERT(pairs == n);
	free(previous);
	free(form);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_percent(data, size);
	fuzz_form(data, size);
	return 0;
}
