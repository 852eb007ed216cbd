/*
 * EndUserId mapping tests.
 */

#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mapping.h"

static void check_mapping(const char *template, const char *user,
			  const char *expected)
{
	char *out = NULL, *error = NULL;
	int r = mapping_end_user_id(template, user, &out, &error);

	if (expected) {
		assert_int_equal(r, 0);
		assert_string_equal(out, expected);
	} else {
		assert_int_equal(r, -EINVAL);
		assert_null(out);
		assert_non_null(strstr(error, user));
	}
	free(out);
	free(error);
}

static void valid_mappings(void **state)
{
	check_mapping("%u", "alice", "alice");
	check_mapping("kiosk_%u", "bob", "kiosk_bob");
	check_mapping("%u_%u", "abc", "abc_abc");
}

static void invalid_mappings(void **state)
{
	check_mapping("%u", "Alice", NULL);
	check_mapping("%u", "al", NULL);
	check_mapping("%u", "a_name_longer_than_24_chars", NULL);
	check_mapping("%u", "alice@corp.example", NULL);
	check_mapping("%u", "../etc", NULL);
	check_mapping("x%%%u", "alice", NULL);
}

static void templates(void **state)
{
	char *error = NULL;

	assert_int_equal(mapping_check_template("%u", &error), 0);
	assert_int_equal(mapping_check_template("a%%b%u", &error), 0);
	assert_int_equal(mapping_check_template("%x", &error), -EINVAL);
	assert_non_null(strstr(error, "%x"));
	free(error);
	assert_int_equal(mapping_check_template("abc%", &error), -EINVAL);
	free(error);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(valid_mappings),
		cmocka_unit_test(invalid_mappings),
		cmocka_unit_test(templates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
