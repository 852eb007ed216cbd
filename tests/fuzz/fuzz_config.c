/*
 * Fuzzes the configuration file: the input, with every "FUZZDIR" replaced
 * by the harness's temporary folder, is written to cloudapp.conf there and
 * loaded with config_load().  A configuration that loads must map a few
 * users to valid EndUserIds and give each of them a complete profile; one
 * that fails must come with a message naming the file.
 *
 * The harness reads no file outside its temporary folder: it skips inputs
 * with @include and inputs whose file settings (ca_file,
 * access_key_secret_file, security_token_file, end_user_id_map) name any
 * file but the ones it wrote there.
 */

#include "config.h"

#include "fuzz.h"

#include <errno.h>
#include <libconfig.h>
#include <string.h>
#include <strings.h>

#include "conf.h"
#include "mapping.h"
#include "profile.h"

/* The placeholder for the temporary folder in inputs. */
#define FUZZ_DIR_TOKEN "FUZZDIR"

/* The file settings and the file the harness writes for each. */
static const struct {
	const char *setting;
	const char *name;
	const char *text;
} fuzz_files[] = {
	{ "access_key_secret_file", "secret", "s3cretEXAMPLE\n" },
	{ "security_token_file", "token", "tokenEXAMPLE\n" },
	{ "end_user_id_map", "end-user-ids",
	  "# linux-user end-user-id\nalice alice_map\nCORP\\carol carol01\n" },
	{ "ca_file", "ca.pem", "not a certificate\n" },
};

#define FUZZ_N_FILES (sizeof(fuzz_files) / sizeof(fuzz_files[0]))

static char *fuzz_paths[FUZZ_N_FILES];

/* Users resolved through a configuration that loads. */
static const char *const fuzz_users[] = {
	"alice", "Bob@corp.example", "CORP\\carol", "kiosk7", "x",
};

static char *const fuzz_groups[] = { "accounting", "users", NULL };

static void fuzz_setup(void)
{
	if (fuzz_paths[0])
		return;
	for (size_t i = 0; i < FUZZ_N_FILES; i++) {
		fuzz_paths[i] = fuzz_write_file(fuzz_files[i].name,
						fuzz_files[i].text,
						strlen(fuzz_files[i].text),
						0600);
		FUZZ_ASSERT(fuzz_paths[i]);
	}
}

/* Returns the input with FUZZ_DIR_TOKEN replaced, malloc'd. */
static char *expand_input(const uint8_t *data, size_t size, size_t *ret_len)
{
	const char *dir = fuzz_temp_dir();
	size_t token_len = strlen(FUZZ_DIR_TOKEN), dir_len = strlen(dir);
	char *text = malloc(size / token_len * dir_len + size + 1);
	size_t n = 0;

	FUZZ_ASSERT(text);
	for (size_t i = 0; i < size;) {
		if (size - i >= token_len &&
		    memcmp(data + i, FUZZ_DIR_TOKEN, token_len) == 0) {
			memcpy(text + n, dir, dir_len);
			n += dir_len;
			i += token_len;
		} else {
			text[n++] = (char)data[i++];
		}
	}
	text[n] = '\0';
	*ret_len = n;
	return text;
}

/* Returns true when text makes config_load() read only the harness's
 * files. */
static bool input_confined(const char *text, size_t len)
{
	config_t cfg;
	bool confined = true;

	/* config_read_string() stops at a NUL byte, but the file reader
	 * might not. */
	if (strlen(text) != len)
		return false;
	for (size_t i = 0; i + 1 < len; i++)
		if (text[i] == '@' &&
		    strncasecmp(text + i + 1, "include", 7) == 0)
			return false;
	config_init(&cfg);
	if (config_read_string(&cfg, text)) {
		for (size_t i = 0; i < FUZZ_N_FILES && confined; i++) {
			const char *value = NULL;

			if (config_lookup_string(&cfg, fuzz_files[i].setting,
						 &value))
				confined = strcmp(value, fuzz_paths[i]) == 0;
		}
	}
	config_destroy(&cfg);
	return confined;
}

static void check_user(const struct daemon_config *config, const char *user)
{
	const struct profile_subject subject = {
		.user = user, .groups = fuzz_groups, .service = "lightdm",
	};
	const struct ticket_profile *profile;
	char *end_user_id = NULL, *error = NULL;
	struct mapping_rules rules;
	int r;

	config_mapping_rules(config, &rules);
	r = mapping_end_user_id(&rules, user, 1000, &end_user_id, &error);
	if (r == 0)
		FUZZ_ASSERT(mapping_end_user_id_valid(end_user_id));
	else
		FUZZ_ASSERT(error || r == -ENOMEM);
	free(end_user_id);
	free(error);

	profile = config_match_profile(config, &subject);
	FUZZ_ASSERT(profile && profile->name && profile->app_id &&
		    profile->product_type);
	error = profile_check(profile);
	FUZZ_ASSERT(!error);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct daemon_config *config = NULL;
	char *text, *path, *error = NULL;
	size_t len;
	int r;

	fuzz_setup();
	text = expand_input(data, size, &len);
	if (!input_confined(text, len)) {
		free(text);
		return -1;
	}
	path = fuzz_write_file("cloudapp.conf", text, len, 0644);
	free(text);
	if (!path)
		return 0;

	r = config_load(path, &config, &error);
	if (r < 0) {
		FUZZ_ASSERT(!config);
		FUZZ_ASSERT(error);
		if (r != -ENOMEM)
			FUZZ_ASSERT(strstr(error, path));
		free(error);
		free(path);
		return 0;
	}
	FUZZ_ASSERT(config && !error);
	FUZZ_ASSERT(config->endpoint && config->endpoint_host &&
		    config->app_id && config->end_user_id);
	FUZZ_ASSERT(mapping_check_template(config->end_user_id, &error) == 0);
	for (size_t i = 0; i < sizeof(fuzz_users) / sizeof(fuzz_users[0]); i++)
		check_user(config, fuzz_users[i]);
	config_unref(config_ref(config));
	config_unref(config);
	free(path);
	return 0;
}
