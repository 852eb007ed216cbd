/*
 * Configuration tests: a valid file, and each kind of error naming the
 * file, the line and the setting.
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
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"

struct fixture {
	char dir[64];
	char conf[128];
	char secret[128];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	FILE *out;

	strcpy(f->dir, "/tmp/cloudapp-test-conf-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->conf, sizeof(f->conf), "%s/cloudapp.conf", f->dir);
	snprintf(f->secret, sizeof(f->secret), "%s/secret", f->dir);
	out = fopen(f->secret, "w");
	fputs("s3cret\n", out);
	fclose(out);
	chmod(f->secret, 0600);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	unlink(f->conf);
	unlink(f->secret);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Writes the base configuration plus extra lines. */
static void write_conf(const struct fixture *f, const char *extra)
{
	FILE *out = fopen(f->conf, "w");

	fprintf(out,
		"endpoint = \"https://127.0.0.1:8443\";\n"
		"access_key_id = \"id\";\n"
		"access_key_secret_file = \"%s\";\n"
		"app_id = \"ca-1\";\n"
		"%s",
		f->secret, extra);
	fclose(out);
}

/* Loads the file and checks that the error contains each fragment. */
static void expect_error(const struct fixture *f, const char *extra,
			 const char *fragment1, const char *fragment2)
{
	struct daemon_config *config = NULL;
	char *error = NULL;

	write_conf(f, extra);
	assert_true(config_load(f->conf, &config, &error) < 0);
	assert_null(config);
	assert_non_null(error);
	assert_non_null(strstr(error, f->conf));
	assert_non_null(strstr(error, fragment1));
	if (fragment2)
		assert_non_null(strstr(error, fragment2));
	assert_null(strstr(error, "s3cret"));
	free(error);
}

static void valid_file(void **state)
{
	struct fixture *f = *state;
	struct daemon_config *config = NULL;
	char *error = NULL;

	write_conf(f, "poll_interval = 0.5;\nticket_timeout = 30;\n"
		      "client_command = [\"/bin/echo\", \"%{ticket_file}\"];\n");
	assert_int_equal(config_load(f->conf, &config, &error), 0);
	assert_string_equal(config->endpoint_host, "127.0.0.1:8443");
	assert_string_equal(config->access_key_secret, "s3cret");
	assert_string_equal(config->product_type, "CloudApp");
	assert_string_equal(config->end_user_id, "%u");
	assert_int_equal(config->poll_interval_ms, 500);
	assert_int_equal(config->ticket_timeout_ms, 30000);
	assert_int_equal(config->pickup_timeout_ms,
			 CONFIG_PICKUP_TIMEOUT_DEFAULT_MS);
	assert_string_equal(config->client_command[1], "%{ticket_file}");
	assert_null(config->client_command[2]);
	config_free(config);
}

static void setting_errors(void **state)
{
	struct fixture *f = *state;

	expect_error(f, "product_type = \"Desktop\";\n", ":5:",
		     "product_type");
	expect_error(f, "poll_interval = 0.01;\n", ":5:", "poll_interval");
	expect_error(f, "ticket_timeout = \"long\";\n", ":5:",
		     "ticket_timeout");
	expect_error(f, "end_user_id = \"%x\";\n", ":5:", "end_user_id");
	expect_error(f, "app_idd = \"x\";\n", ":5:", "app_idd");
	expect_error(f, "client_command = [\"relative\"];\n", ":5:",
		     "client_command");
	expect_error(f, "ca_file = \"/nonexistent/ca.pem\";\n", ":5:",
		     "ca_file");
	expect_error(f, "app_id = \"x\"\n", ":", "syntax error");
}

static void limit_settings(void **state)
{
	struct fixture *f = *state;
	struct daemon_config *config = NULL;
	char *error = NULL;

	write_conf(f, "max_tasks = 5;\nmax_requests_per_second = 2.5;\n"
		      "poll_interval = 8;\nidle_timeout = 0;\n");
	assert_int_equal(config_load(f->conf, &config, &error), 0);
	assert_int_equal(config->max_tasks, 5);
	assert_true(config->max_requests_per_second == 2.5);
	assert_int_equal(config->max_connections,
			 CONFIG_MAX_CONNECTIONS_DEFAULT);
	assert_int_equal(config->idle_timeout_ms, 0);
	/* An unset poll_interval_max follows a long poll_interval. */
	assert_int_equal(config->poll_interval_max_ms, 8000);
	config_free(config);

	expect_error(f, "max_tasks = 0;\n", ":5:", "max_tasks");
	expect_error(f, "max_tasks = 1.5;\n", ":5:", "whole number");
	expect_error(f, "max_requests_per_second = \"fast\";\n", ":5:",
		     "max_requests_per_second");
	expect_error(f, "poll_backoff = 9;\n", ":5:", "poll_backoff");
	expect_error(f, "poll_interval = 2;\npoll_interval_max = 1;\n",
		     ":6:", "poll_interval_max");
	expect_error(f, "max_connections_per_uid = -1;\n", ":5:",
		     "max_connections_per_uid");
}

static void endpoint_errors(void **state)
{
	struct fixture *f = *state;
	FILE *out = fopen(f->conf, "w");
	struct daemon_config *config = NULL;
	char *error = NULL;

	fprintf(out, "access_key_id = \"id\";\nendpoint = \"http://x\";\n"
		     "access_key_secret_file = \"%s\";\napp_id = \"a\";\n",
		f->secret);
	fclose(out);
	assert_true(config_load(f->conf, &config, &error) < 0);
	assert_non_null(strstr(error, ":2: setting endpoint"));
	free(error);
}

static void missing_required(void **state)
{
	struct fixture *f = *state;
	FILE *out = fopen(f->conf, "w");
	struct daemon_config *config = NULL;
	char *error = NULL;

	fputs("endpoint = \"https://h\";\n", out);
	fclose(out);
	assert_true(config_load(f->conf, &config, &error) < 0);
	assert_non_null(strstr(error, "access_key_id"));
	assert_non_null(strstr(error, "missing"));
	free(error);
}

static void secret_file_modes(void **state)
{
	struct fixture *f = *state;

	chmod(f->secret, 0640);
	expect_error(f, "", "access_key_secret_file", "chmod 0600");
	chmod(f->secret, 0604);
	expect_error(f, "", "access_key_secret_file", "0604");
	chmod(f->secret, 0600);
}

static void missing_file(void **state)
{
	struct daemon_config *config = NULL;
	char *error = NULL;

	assert_true(config_load("/nonexistent/cloudapp.conf", &config,
				&error) < 0);
	assert_non_null(strstr(error, "/nonexistent/cloudapp.conf"));
	free(error);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(valid_file, setup, teardown),
		cmocka_unit_test_setup_teardown(setting_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(limit_settings, setup, teardown),
		cmocka_unit_test_setup_teardown(endpoint_errors, setup,
						teardown),
		cmocka_unit_test_setup_teardown(missing_required, setup,
						teardown),
		cmocka_unit_test_setup_teardown(secret_file_modes, setup,
						teardown),
		cmocka_unit_test(missing_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
