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

	if (!f)
		return -1;
	strcpy(f->dir, "/tmp/cloudapp-test-conf-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
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
	char not_pem[256];

	expect_error(f, "product_type = \"Desktop\";\n", ":5:",
		     "product_type");
	expect_error(f, "poll_interval = 0.01;\n", ":5:", "poll_interval");
	expect_error(f, "ticket_timeout = \"long\";\n", ":5:",
		     "ticket_timeout");
	expect_error(f, "end_user_id = \"%x\";\n", ":5:", "end_user_id");
	expect_error(f, "app_idd = \"x\";\n", ":5:", "app_idd");
	expect_error(f, "client_command = [\"relative\"];\n", ":5:",
		     "client_command");
	expect_error(f, "client_command = [\"/bin/c\", \"%{ticketfile}\"];\n",
		     ":5:", "unknown placeholder %{ticketfile}");
	expect_error(f, "client_command = [\"/bin/c\", \"%{ticket}\"];\n",
		     ":5:", "%{ticket_file}");
	expect_error(f, "client_command = [\"/bin/c\", \"%{user\"];\n",
		     ":5:", "unterminated placeholder");
	expect_error(f, "ca_file = \"/nonexistent/ca.pem\";\n", ":5:",
		     "ca_file");
	/* The secret file is a readable file that is not PEM. */
	snprintf(not_pem, sizeof(not_pem), "ca_file = \"%s\";\n", f->secret);
	expect_error(f, not_pem, ":5:", "no PEM certificate");
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
	/* libconfig wraps these to 1 and 0 without the check. */
	expect_error(f, "ticket_timeout = 4294967297;\n", ":5:",
		     "too large");
	expect_error(f, "max_tasks = 4294967296;\n", ":5:", "too large");
}

/* Loads a file whose endpoint is the given value; returns config_load's
 * result and the error in *ret_error. */
static int load_endpoint(const struct fixture *f, const char *endpoint,
			 char **ret_error)
{
	FILE *out = fopen(f->conf, "w");
	struct daemon_config *config = NULL;
	int r;

	fprintf(out, "access_key_id = \"id\";\nendpoint = \"%s\";\n"
		     "access_key_secret_file = \"%s\";\napp_id = \"a\";\n",
		endpoint, f->secret);
	fclose(out);
	*ret_error = NULL;
	r = config_load(f->conf, &config, ret_error);
	config_free(config);
	return r;
}

static void user_settings(void **state)
{
	struct fixture *f = *state;
	struct daemon_config *config = NULL;
	char *error = NULL, text[512], map_path[160];
	FILE *out;

	snprintf(map_path, sizeof(map_path), "%s/map", f->dir);
	out = fopen(map_path, "w");
	fputs("CORP\\alice corp_alice\n", out);
	fclose(out);
	snprintf(text, sizeof(text),
		 "end_user_id_lowercase = true;\nend_user_id_map = \"%s\";\n"
		 "min_uid = 500;\ndeny_users = [\"kiosk_admin\"];\n"
		 "deny_groups = [\"wheel\", \"staff\"];\n",
		 map_path);
	write_conf(f, text);
	assert_int_equal(config_load(f->conf, &config, &error), 0);
	assert_true(config->end_user_id_lowercase);
	assert_false(config->end_user_id_strip_domain);
	assert_int_equal(config->map_len, 1);
	assert_int_equal(config->min_uid, 500);
	assert_string_equal(config->deny_users[0], "kiosk_admin");
	assert_null(config->deny_users[1]);
	assert_string_equal(config->deny_groups[1], "staff");
	config_free(config);

	write_conf(f, "");
	assert_int_equal(config_load(f->conf, &config, &error), 0);
	assert_int_equal(config->min_uid, CONFIG_MIN_UID_DEFAULT);
	assert_null(config->deny_users);
	config_free(config);

	expect_error(f, "end_user_id_lowercase = 1;\n", ":5:",
		     "true or false");
	expect_error(f, "deny_users = \"bob\";\n", ":5:", "deny_users");
	expect_error(f, "deny_groups = [\"\"];\n", ":5:", "deny_groups");
	expect_error(f, "min_uid = -1;\n", ":5:", "min_uid");
	expect_error(f, "end_user_id_map = \"/nonexistent/map\";\n", ":5:",
		     "end_user_id_map");

	/* A bad line in the map file is named with its own file and line. */
	out = fopen(map_path, "w");
	fputs("bob bob_ok\nalice Not_Valid\n", out);
	fclose(out);
	snprintf(text, sizeof(text), "end_user_id_map = \"%s\";\n",
		 map_path);
	expect_error(f, text, ":5:", ":2:");
	unlink(map_path);
}

/* Writes content to the file name in folder. */
static void write_file(const char *folder, const char *name,
		       const char *content)
{
	char path[256];
	FILE *out;

	snprintf(path, sizeof(path), "%s/%s", folder, name);
	out = fopen(path, "w");
	assert_non_null(out);
	fputs(content, out);
	fclose(out);
}

static void remove_file(const char *folder, const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", folder, name);
	unlink(path);
}

static void drop_ins_override(void **state)
{
	struct fixture *f = *state;
	struct daemon_config *config = NULL;
	char *error = NULL, drop_ins[160], drop_in[200];

	snprintf(drop_ins, sizeof(drop_ins), "%s/conf.d", f->dir);
	assert_int_equal(mkdir(drop_ins, 0755), 0);
	/* Later files win; the @include is relative to the main file's
	 * folder, not the working folder. */
	write_file(drop_ins, "10-poll.conf", "poll_interval = 2;\n");
	write_file(drop_ins, "20-poll.conf", "@include \"extra.inc\"\n");
	write_file(f->dir, "extra.inc", "poll_interval = 3;\n");
	write_file(drop_ins, "30-ignored.txt", "not = read;\n");
	write_conf(f, "poll_interval = 1;\n");
	assert_int_equal(config_load(f->conf, &config, &error), 0);
	assert_int_equal(config->poll_interval_ms, 3000);
	config_free(config);

	/* An error in a drop-in names that file and its line. */
	write_file(drop_ins, "40-bad.conf", "\nmax_tasks = \"many\";\n");
	snprintf(drop_in, sizeof(drop_in), "%s/40-bad.conf:2:", drop_ins);
	assert_true(config_load(f->conf, &config, &error) < 0);
	assert_non_null(strstr(error, drop_in));
	assert_non_null(strstr(error, "max_tasks"));
	free(error);
	write_file(drop_ins, "40-bad.conf", "typo_setting = 1;\n");
	assert_true(config_load(f->conf, &config, &error) < 0);
	assert_non_null(strstr(error, "40-bad.conf:1:"));
	assert_non_null(strstr(error, "typo_setting"));
	free(error);

	remove_file(drop_ins, "10-poll.conf");
	remove_file(drop_ins, "20-poll.conf");
	remove_file(drop_ins, "30-ignored.txt");
	remove_file(drop_ins, "40-bad.conf");
	remove_file(f->dir, "extra.inc");
	rmdir(drop_ins);
}

static void profiles_match_and_inherit(void **state)
{
	struct fixture *f = *state;
	struct daemon_config *config = NULL;
	char *error = NULL;
	char *accounting[] = { "staff", "accounting", NULL };
	struct profile_subject by_group = { "carol", accounting, NULL };
	struct profile_subject by_name = { "kiosk07", NULL, NULL };
	struct profile_subject by_service = { "dave", NULL, "sddm" };
	struct profile_subject other = { "erin", NULL, "lightdm" };
	const struct ticket_profile *p;

	write_conf(f, "biz_region_id = \"cn-hangzhou\";\n"
		      "client_command = [\"/bin/default\"];\n"
		      "profiles = (\n"
		      "  { name = \"finance\"; groups = [\"accounting\"];\n"
		      "    app_id = \"ca-finance\";\n"
		      "    app_instance_group_ids = [\"aig-1\"];\n"
		      "    app_instance_id = \"ai-1\"; },\n"
		      "  { name = \"kiosks\"; users = [\"kiosk*\"];\n"
		      "    access_type = \"VPC\";\n"
		      "    client_command = [\"/bin/kiosk\"]; },\n"
		      "  { name = \"sddm\"; services = [\"sddm\"];\n"
		      "    product_type = \"AndroidCloud\"; }\n"
		      ");\n");
	assert_int_equal(config_load(f->conf, &config, &error), 0);
	assert_int_equal(config->n_profiles, 3);

	p = config_match_profile(config, &by_group);
	assert_string_equal(p->name, "finance");
	assert_string_equal(p->app_id, "ca-finance");
	/* Unset settings come from the top level. */
	assert_string_equal(p->biz_region_id, "cn-hangzhou");
	assert_string_equal(p->client_command[0], "/bin/default");

	p = config_match_profile(config, &by_name);
	assert_string_equal(p->name, "kiosks");
	assert_string_equal(p->app_id, "ca-1");
	assert_string_equal(p->access_type, "VPC");
	assert_string_equal(p->client_command[0], "/bin/kiosk");

	p = config_match_profile(config, &by_service);
	assert_string_equal(p->product_type, "AndroidCloud");

	p = config_match_profile(config, &other);
	assert_string_equal(p->name, "default");
	assert_string_equal(p->product_type, "CloudApp");
	config_free(config);
}

static void profile_rule_errors(void **state)
{
	struct fixture *f = *state;

	expect_error(f, "access_type = \"LAN\";\n", "access_type",
		     "INTERNET, VPC");
	expect_error(f, "biz_region_id = \"us-east-1\";\n", "biz_region_id",
		     "cn-hangzhou");
	expect_error(f, "app_instance_id = \"ai-1\";\n", "app_instance_id",
		     "exactly one");
	expect_error(f,
		     "app_instance_id = \"ai-1\";\n"
		     "app_instance_group_ids = [\"aig-1\", \"aig-2\"];\n",
		     "app_instance_id", "not 2");
	expect_error(f, "app_instance_persistent_id = \"p-1\";\n",
		     "app_instance_persistent_id", "app_instance_group_ids");
	expect_error(f, "profiles = ( { app_id = \"x\"; } );\n", ":5:",
		     "needs a name");
	expect_error(f,
		     "profiles = ( { name = \"a\"; appid = \"x\"; } );\n",
		     ":5:", "in profile a: unknown setting");
	expect_error(f,
		     "profiles = ( { name = \"a\"; access_type = \"x\"; } );\n",
		     ":5:", "profile a: setting access_type");
	expect_error(f,
		     "profiles = ( { name = \"a\"; users = []; } );\n",
		     ":5:", "users");
	expect_error(f,
		     "profiles = ( { name = \"a\";\n"
		     "  client_command = [\"/bin/c\", \"%{ticket}\"]; } );\n",
		     ":5:", "%{ticket_file}");
	expect_error(f,
		     "profiles = ( { name = \"a\"; }, { name = \"a\"; } );\n",
		     ":5:", "two profiles are named a");
	expect_error(f, "deny_users = [\"\xff\xfe\"];\n", ":5:",
		     "valid UTF-8");
}

/* A folder or a FIFO pulled in by @include fails with the file and line
 * of the directive; libconfig would exit or block on them. */
static void include_not_regular(void **state)
{
	struct fixture *f = *state;
	char folder[160], fifo[160], text[400];

	snprintf(folder, sizeof(folder), "%s/incdir", f->dir);
	snprintf(fifo, sizeof(fifo), "%s/inc.fifo", f->dir);
	assert_int_equal(mkdir(folder, 0755), 0);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	snprintf(text, sizeof(text), "@include \"incdir\"\n");
	expect_error(f, text, ":5: @include", "folder");
	snprintf(text, sizeof(text), "@include \"%s\"\n", fifo);
	expect_error(f, text, ":5: @include", "not a regular file");
	rmdir(folder);
	unlink(fifo);
}

static void endpoint_errors(void **state)
{
	static const char *const invalid[] = {
		"http://x",	     "https://",	 "https:///",
		"https://h:99999",   "https://h:",	 "https://h:0",
		"https://h:8x",	     "https://h/path",	 "https://u@h",
		"https://h?q=1",     "https://[::1",	 "ftp://h",
	};
	static const char *const valid[] = {
		"https://h",
		"https://h:8443/",
		"https://[::1]:443",
		"https://appstream-center.cn-shanghai.aliyuncs.com",
	};
	struct fixture *f = *state;
	char *error;

	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		assert_true(load_endpoint(f, invalid[i], &error) < 0);
		assert_non_null(error);
		assert_non_null(strstr(error, ":2: setting endpoint"));
		free(error);
	}
	for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
		assert_int_equal(load_endpoint(f, valid[i], &error), 0);
		assert_null(error);
	}
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
	assert_non_null(strstr(error, "app_id"));
	assert_non_null(strstr(error, "missing"));
	free(error);

	/* The key may come from elsewhere, but id and secret file go
	 * together. */
	write_conf(f, "");
	out = fopen(f->conf, "w");
	fprintf(out, "endpoint = \"https://h\";\napp_id = \"a\";\n"
		     "access_key_id = \"id\";\n");
	fclose(out);
	assert_true(config_load(f->conf, &config, &error) < 0);
	assert_non_null(strstr(error, "access_key_secret_file"));
	assert_non_null(strstr(error, "go together"));
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

/* Rewrites the secret file with content, mode 0600. */
static void write_secret(const struct fixture *f, const char *content)
{
	FILE *out = fopen(f->secret, "w");

	fputs(content, out);
	fclose(out);
	chmod(f->secret, 0600);
}

static void secret_file_contents(void **state)
{
	struct fixture *f = *state;
	struct daemon_config *config = NULL;
	char *error = NULL, link_path[160];

	write_conf(f, "");
	write_secret(f, "s3cret\r\n");
	assert_int_equal(config_load(f->conf, &config, &error), 0);
	assert_string_equal(config->access_key_secret, "s3cret");
	config_free(config);

	write_secret(f, "s3cret \n");
	expect_error(f, "", "access_key_secret_file", "space");
	write_secret(f, "s3c\tret\n");
	expect_error(f, "", "access_key_secret_file", "space");
	write_secret(f, "one\ntwo\n");
	expect_error(f, "", "access_key_secret_file", "one line");
	write_secret(f, "");
	expect_error(f, "", "access_key_secret_file", "one line");

	/* A symbolic link to a good file is rejected by name. */
	write_secret(f, "s3cret\n");
	snprintf(link_path, sizeof(link_path), "%s/link", f->dir);
	assert_int_equal(symlink(f->secret, link_path), 0);
	{
		FILE *out = fopen(f->conf, "w");

		fprintf(out,
			"endpoint = \"https://127.0.0.1:8443\";\n"
			"access_key_id = \"id\";\n"
			"access_key_secret_file = \"%s\";\n"
			"app_id = \"ca-1\";\n",
			link_path);
		fclose(out);
	}
	assert_true(config_load(f->conf, &config, &error) < 0);
	assert_non_null(strstr(error, "symbolic link"));
	free(error);
	unlink(link_path);
}

/* Writes contents to the fixture's CA file and loads a configuration
 * that names it.  Returns what config_load() returns. */
static int load_with_ca_file(const struct fixture *f, const char *contents,
			     char **ret_error)
{
	struct daemon_config *config = NULL;
	char ca_path[160], setting[200];
	FILE *out;
	int r;

	snprintf(ca_path, sizeof(ca_path), "%s/ca.pem", f->dir);
	out = fopen(ca_path, "w");
	assert_non_null(out);
	fputs(contents, out);
	fclose(out);
	snprintf(setting, sizeof(setting), "ca_file = \"%s\";\n", ca_path);
	write_conf(f, setting);
	*ret_error = NULL;
	r = config_load(f->conf, &config, ret_error);
	config_free(config);
	unlink(ca_path);
	return r;
}

/* The CA file needs a whole PEM certificate block; the certificate itself
 * is parsed only when the daemon loads the trusted CAs. */
static void ca_file_pem_blocks(void **state)
{
	struct fixture *f = *state;
	char *error = NULL;

	assert_int_equal(load_with_ca_file(f,
					   "-----BEGIN CERTIFICATE-----\n"
					   "MIIB\n"
					   "-----END CERTIFICATE-----\n",
					   &error),
			 0);
	/* Windows line ends, text before the block, another label. */
	assert_int_equal(
		load_with_ca_file(f,
				  "Subject: a test CA\r\n"
				  "-----BEGIN TRUSTED CERTIFICATE-----\r\n"
				  "MIIB\r\n"
				  "-----END TRUSTED CERTIFICATE-----\r\n",
				  &error),
		0);
	/* A key block first, then a certificate. */
	assert_int_equal(load_with_ca_file(f,
					   "-----BEGIN PRIVATE KEY-----\n"
					   "MIIE\n"
					   "-----END PRIVATE KEY-----\n"
					   "-----BEGIN CERTIFICATE-----\n"
					   "MIIB\n"
					   "-----END CERTIFICATE-----\n",
					   &error),
			 0);

	/* Cut off before its END line. */
	assert_int_equal(load_with_ca_file(f,
					   "-----BEGIN CERTIFICATE-----\n"
					   "MIIB\n",
					   &error),
			 -EINVAL);
	assert_non_null(strstr(error, "no PEM certificate"));
	free(error);

	/* Only a key. */
	assert_int_equal(load_with_ca_file(f,
					   "-----BEGIN PRIVATE KEY-----\n"
					   "MIIE\n"
					   "-----END PRIVATE KEY-----\n",
					   &error),
			 -EINVAL);
	assert_non_null(strstr(error, "ca_file"));
	free(error);

	/* An END line of another label does not close the block. */
	assert_int_equal(load_with_ca_file(f,
					   "-----BEGIN CERTIFICATE-----\n"
					   "MIIB\n"
					   "-----END X509 CRL-----\n",
					   &error),
			 -EINVAL);
	free(error);

	assert_int_equal(load_with_ca_file(f, "", &error), -EINVAL);
	free(error);
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
		cmocka_unit_test_setup_teardown(user_settings, setup, teardown),
		cmocka_unit_test_setup_teardown(profiles_match_and_inherit, setup,
						teardown),
		cmocka_unit_test_setup_teardown(profile_rule_errors, setup,
						teardown),
		cmocka_unit_test_setup_teardown(include_not_regular, setup,
						teardown),
		cmocka_unit_test_setup_teardown(drop_ins_override, setup,
						teardown),
		cmocka_unit_test_setup_teardown(endpoint_errors, setup,
						teardown),
		cmocka_unit_test_setup_teardown(missing_required, setup,
						teardown),
		cmocka_unit_test_setup_teardown(secret_file_modes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(secret_file_contents, setup,
						teardown),
		cmocka_unit_test_setup_teardown(ca_file_pem_blocks, setup,
						teardown),
		cmocka_unit_test(missing_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
