/*
 * Percent-encoding and form body tests.
 */

#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "encode.h"

static void check_encoded(const char *input, const char *expected)
{
	char *out = encode_percent(input, strlen(input));

	assert_string_equal(out, expected);
	free(out);
}

static void reserved_characters(void **state)
{
	check_encoded("a b", "a%20b");
	check_encoded("a+b", "a%2Bb");
	check_encoded("*", "%2A");
	check_encoded("~-_.", "~-_.");
	check_encoded("!'()", "%21%27%28%29");
	check_encoded("/q /n", "%2Fq%20%2Fn");
	check_encoded("", "");
}

static void utf8_bytes(void **state)
{
	check_encoded("\xc3\xa9", "%C3%A9");
	check_encoded("\xe4\xb8\xad", "%E4%B8%AD");
}

/* Every byte value: only the unreserved set stays literal. */
static void all_byte_values(void **state)
{
	for (int b = 1; b < 256; b++) {
		char in[2] = { (char)b, '\0' };
		char *out = encode_percent(in, 1);
		int literal = (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') ||
			      (b >= '0' && b <= '9') || b == '-' || b == '_' ||
			      b == '.' || b == '~';
		char expected[4];

		if (literal)
			snprintf(expected, sizeof(expected), "%c", b);
		else
			snprintf(expected, sizeof(expected), "%%%02X", b);
		assert_string_equal(out, expected);
		free(out);
	}
	{
		char *out = encode_percent("\0", 1);

		assert_string_equal(out, "%00");
		free(out);
	}
}

static void form_sorted_by_bytes(void **state)
{
	struct encode_param params[] = {
		{ "X.2", "b" }, { "X.10", "j" }, { "X.1", "a" }, { "Empty", "" },
	};
	char *form = encode_form(params, 4);

	assert_string_equal(form, "Empty=&X.1=a&X.10=j&X.2=b");
	free(form);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(reserved_characters),
		cmocka_unit_test(utf8_bytes),
		cmocka_unit_test(all_byte_values),
		cmocka_unit_test(form_sorted_by_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
