/*
 * Fuzzes user mapping: the end_user_id template, the end_user_id_map file
 * and the client_command placeholder check.  Every EndUserId that comes
 * out must be a valid convenience account name, and every map entry must
 * be found again by its user.
 *
 * Input: the template, a newline, the user name, a newline, one flags
 * byte, then the text of the map file.  Flags: bit 0 end_user_id_lowercase,
 * bit 1 end_user_id_strip_domain, bit 2 use the map file; the high bits
 * pick the uid for %U.
 */

#include "config.h"

#include "fuzz.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "mapping.h"
#include "placeholder.h"

#define FUZZ_LOWERCASE 0x01
#define FUZZ_STRIP_DOMAIN 0x02
#define FUZZ_USE_MAP 0x04

/* The placeholders mapping_check_template() accepts after a '%'. */
static bool template_valid(const char *template)
{
	for (const char *p = template; *p; p++) {
		if (*p != '%')
			continue;
		p++;
		if (!*p || !strchr("uUdnh%", *p))
			return false;
	}
	return true;
}

static void check_end_user_id(const struct mapping_rules *rules,
			      const char *user, uid_t uid)
{
	char *end_user_id = NULL, *error = NULL;
	int r = mapping_end_user_id(rules, user, uid, &end_user_id, &error);

	if (r == 0) {
		FUZZ_ASSERT(end_user_id);
		FUZZ_ASSERT(!error);
		FUZZ_ASSERT(mapping_end_user_id_valid(end_user_id));
	} else {
		FUZZ_ASSERT(r == -EINVAL || r == -ENOMEM);
		FUZZ_ASSERT(!end_user_id);
		FUZZ_ASSERT(error || r == -ENOMEM);
	}
	free(end_user_id);
	free(error);
}

/* Checks a loaded map: sorted, unique, valid, and found by lookup. */
static void check_map(struct mapping_rules *rules, uid_t uid)
{
	for (size_t i = 0; i < rules->map_len; i++) {
		const struct mapping_entry *entry = &rules->map[i];
		char *end_user_id = NULL, *error = NULL;

		FUZZ_ASSERT(mapping_end_user_id_valid(entry->end_user_id));
		if (i > 0)
			FUZZ_ASSERT(strcmp(rules->map[i - 1].user,
					   entry->user) < 0);
		FUZZ_ASSERT(mapping_map_lookup(rules, entry->user) ==
			    entry->end_user_id);
		FUZZ_ASSERT(mapping_end_user_id(rules, entry->user, uid,
						&end_user_id, &error) == 0);
		FUZZ_ASSERT(strcmp(end_user_id, entry->end_user_id) == 0);
		free(end_user_id);
		free(error);
	}
}

static void fuzz_map(struct mapping_rules *rules, const uint8_t *text,
		     size_t size, const char *user, uid_t uid)
{
	struct mapping_entry *map = NULL;
	char *path, *error = NULL;
	size_t len = 0;
	int r;

	path = fuzz_write_file("end-user-ids", text, size, 0600);
	if (!path)
		return;
	r = mapping_load_map(path, &map, &len, &error);
	if (r < 0) {
		FUZZ_ASSERT(!map && len == 0);
		FUZZ_ASSERT(error || r == -ENOMEM);
		free(error);
		unlink(path);
		free(path);
		return;
	}
	FUZZ_ASSERT(!error);
	rules->map = map;
	rules->map_len = len;
	check_map(rules, uid);
	if (template_valid(rules->template))
		check_end_user_id(rules, user, uid);
	mapping_free_map(map, len);
	rules->map = NULL;
	rules->map_len = 0;
	unlink(path);
	free(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *end = data + size, *newline;
	struct mapping_rules rules = { 0 };
	char *template, *user, *error = NULL;
	uint8_t flags = 0;
	uid_t uid;
	int r;

	newline = memchr(data, '\n', size);
	if (!newline)
		return -1;
	template = fuzz_strndup(data, (size_t)(newline - data));
	data = newline + 1;
	newline = memchr(data, '\n', (size_t)(end - data));
	if (!newline)
		newline = end;
	user = fuzz_strndup(data, (size_t)(newline - data));
	data = newline < end ? newline + 1 : end;
	if (data < end)
		flags = *data++;
	uid = 1000u + (uid_t)(flags >> 3);
	FUZZ_ASSERT(template && user);

	/* A NUL byte ends the template and the user name early, as it
	 * would end a C string from a configuration file. */

	r = mapping_check_template(template, &error);
	FUZZ_ASSERT((r == 0) == template_valid(template));
	FUZZ_ASSERT(r == 0 ? !error : r == -EINVAL);
	free(error);
	if (!cloudapp_placeholder_check(template, &error))
		free(error);

	rules.template = template;
	rules.lowercase = flags & FUZZ_LOWERCASE;
	rules.strip_domain = flags & FUZZ_STRIP_DOMAIN;
	if (r == 0)
		check_end_user_id(&rules, user, uid);
	if (flags & FUZZ_USE_MAP)
		fuzz_map(&rules, data, (size_t)(end - data), user, uid);

	free(template);
	free(user);
	return 0;
}
