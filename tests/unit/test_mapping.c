/*
 * EndUserId mapping tests: every form of user name a fleet sees (local,
 * user@domain, DOMAIN\user, uppercase), the placeholders, the lowercase
 * and strip-domain options, and the map file.
 */

#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "mapping.h"

/* The fields follow struct mapping_rules and then mapping_end_user_id()'s
 * arguments, which reads better in the tables than an order that saves
 * padding. */
/* NOLINTNEXTLINE(clang-analyzer-optin.performance.Padding) */
struct mapping_case {
	const char *template;
	bool lowercase;
	bool strip_domain;
	const char *user;
	uid_t uid;
	const char *expected; /* NULL: rejected */
};

static void check_case(const struct mapping_case *c)
{
	struct mapping_rules rules = { c->template, c->lowercase,
				       c->strip_domain, NULL, 0 };
	char *out = NULL, *error = NULL;
	int r = mapping_end_user_id(&rules, c->user, c->uid, &out, &error);

	if (c->expected) {
		assert_int_equal(r, 0);
		assert_string_equal(out, c->expected);
	} else {
		assert_int_equal(r, -EINVAL);
		assert_null(out);
		/* The error names the user and the result. */
		assert_non_null(strstr(error, c->user));
		assert_non_null(strstr(error, "EndUserId"));
	}
	free(out);
	free(error);
}

static void user_name_forms(void **state)
{
	static const struct mapping_case cases[] = {
		{ "%u", false, false, "alice", 1000, "alice" },
		{ "kiosk_%u", false, false, "bob", 1000, "kiosk_bob" },
		{ "%u_%u", false, false, "abc", 1000, "abc_abc" },
		{ "%n", false, false, "alice@corp.example", 1000, "alice" },
		{ "%n", false, false, "CORP\\alice", 1000, "alice" },
		{ "%n", true, false, "CORP\\Alice", 1000, "alice" },
		{ "%u", false, true, "alice@corp.example", 1000, "alice" },
		{ "%u", true, true, "CORP\\Alice", 1000, "alice" },
		{ "%d_%n", true, false, "CORP\\Alice", 1000, "corp_alice" },
		{ "%n_%d", false, false, "bob@corp", 1000, "bob_corp" },
		{ "%u", true, false, "Alice", 1000, "alice" },
		{ "user%U", false, false, "alice", 10001, "user10001" },
		{ "%%u", false, false, "alice", 1000, NULL },
		{ "%u", false, false, "Alice", 1000, NULL },
		{ "%u", false, false, "al", 1000, NULL },
		{ "%u", false, false, "a_name_longer_than_24_chars", 1000,
		  NULL },
		{ "%u", false, false, "alice@corp.example", 1000, NULL },
		{ "%u", true, false, "CORP\\alice", 1000, NULL },
		{ "%u", false, false, "../etc", 1000, NULL },
		{ "%u", false, false, "al ice", 1000, NULL },
		{ "%u", false, false, "j\xc3\xbcrgen", 1000, NULL },
		{ "%d", false, false, "alice", 1000, NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(&cases[i]);
}

static void host_name_placeholder(void **state)
{
	struct mapping_rules rules = { "k_%h", true, false, NULL, 0 };
	char host[256], expected[300], *out = NULL, *error = NULL;
	int r;

	assert_int_equal(gethostname(host, sizeof(host)), 0);
	host[strcspn(host, ".")] = '\0';
	for (char *p = host; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	snprintf(expected, sizeof(expected), "k_%s", host);
	r = mapping_end_user_id(&rules, "alice", 1000, &out, &error);
	if (mapping_end_user_id_valid(expected)) {
		assert_int_equal(r, 0);
		assert_string_equal(out, expected);
	} else {
		assert_int_equal(r, -EINVAL);
	}
	free(out);
	free(error);
}

static void templates(void **state)
{
	static const char *const valid[] = { "%u", "a%%b%u", "%U", "%d_%n",
					     "%h", "plain" };
	static const char *const invalid[] = { "%x", "abc%", "%N" };
	char *error = NULL;

	for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
		assert_int_equal(mapping_check_template(valid[i], &error), 0);
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		assert_int_equal(mapping_check_template(invalid[i], &error),
				 -EINVAL);
		assert_non_null(error);
		free(error);
	}
}

/* Writes content to a new temporary file and returns its path. */
static char *write_temp(const char *content)
{
	char *path = strdup("/tmp/cloudapp-test-map-XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)),
			 (ssize_t)strlen(content));
	close(fd);
	return path;
}

static void map_file_wins(void **state)
{
	char *path = write_temp("# kiosk accounts\n"
				"\n"
				"CORP\\Alice   corp_alice\n"
				"bob bob_kiosk\t\n");
	struct mapping_entry *map = NULL;
	size_t len = 0;
	char *error = NULL, *out = NULL;

	assert_int_equal(mapping_load_map(path, &map, &len, &error), 0);
	assert_int_equal(len, 2);
	{
		struct mapping_rules rules = { "%u", false, false, map, len };

		assert_int_equal(mapping_end_user_id(&rules, "CORP\\Alice", 1,
						     &out, &error),
				 0);
		assert_string_equal(out, "corp_alice");
		free(out);
		assert_int_equal(mapping_end_user_id(&rules, "bob", 1, &out,
						     &error),
				 0);
		assert_string_equal(out, "bob_kiosk");
		free(out);
		/* Users not in the map fall back to the template. */
		assert_int_equal(mapping_end_user_id(&rules, "carol", 1, &out,
						     &error),
				 0);
		assert_string_equal(out, "carol");
		free(out);
	}
	mapping_free_map(map, len);
	unlink(path);
	free(path);
}

static void map_file_without_entries(void **state)
{
	static const char *const contents[] = { "", "# no kiosk users yet\n\n" };

	/* An empty map is valid, and every user falls back to the
	 * template.  Loading one must not pass a null array to qsort(),
	 * which glibc declares nonnull (-fsanitize=nonnull-attribute). */
	for (size_t i = 0; i < sizeof(contents) / sizeof(contents[0]); i++) {
		char *path = write_temp(contents[i]);
		struct mapping_entry *map = NULL;
		size_t len = 1;
		char *error = NULL;

		assert_int_equal(mapping_load_map(path, &map, &len, &error), 0);
		assert_int_equal(len, 0);
		assert_null(error);
		mapping_free_map(map, len);
		unlink(path);
		free(path);
	}
}

/* A map of comments and blank lines only is valid and empty, and users
 * fall back to the template. */
static void map_file_empty_falls_back(void **state)
{
	char *path = write_temp("# no kiosk accounts yet\n\n   \n");
	struct mapping_entry *map = NULL;
	size_t len = 1;
	char *error = NULL, *out = NULL;

	assert_int_equal(mapping_load_map(path, &map, &len, &error), 0);
	assert_null(error);
	assert_int_equal(len, 0);
	{
		struct mapping_rules rules = { "%u", false, false, map, len };

		assert_null(mapping_map_lookup(&rules, "alice"));
		assert_int_equal(mapping_end_user_id(&rules, "alice", 1, &out,
						     &error),
				 0);
		assert_string_equal(out, "alice");
		free(out);
	}
	mapping_free_map(map, len);
	unlink(path);
	free(path);
}

static void map_file_errors(void **state)
{
	static const char *const bad[] = {
		"alice\n",
		"alice Alice_Upper\n",
		"alice a b\n",
		"alice ok_one\nalice ok_two\n",
	};
	struct mapping_entry *map = NULL;
	size_t len = 0;
	char *error = NULL;

	/* A folder or a device is not read, and reports why. */
	assert_int_equal(mapping_load_map("/tmp", &map, &len, &error), -EINVAL);
	assert_non_null(strstr(error, "not a regular file"));
	free(error);
	assert_int_equal(mapping_load_map("/dev/zero", &map, &len, &error),
			 -EINVAL);
	free(error);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *path = write_temp(bad[i]);

		assert_int_equal(mapping_load_map(path, &map, &len, &error),
				 -EINVAL);
		assert_null(map);
		assert_non_null(error);
		assert_non_null(strstr(error, path));
		/* Every error points at a line, the duplicate's too. */
		assert_null(strstr(error, ":0:"));
		free(error);
		unlink(path);
		free(path);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(user_name_forms),
		cmocka_unit_test(host_name_placeholder),
		cmocka_unit_test(templates),
		cmocka_unit_test(map_file_wins),
		cmocka_unit_test(map_file_without_entries),
		cmocka_unit_test(map_file_empty_falls_back),
		cmocka_unit_test(map_file_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
