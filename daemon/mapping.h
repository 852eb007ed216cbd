/*
 * Maps a Linux user name to an App Streaming EndUserId (a convenience
 * account name): an explicit map file first, then the end_user_id
 * template.
 */

#ifndef CLOUDAPP_MAPPING_H
#define CLOUDAPP_MAPPING_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Convenience account names: 3 to 24 characters of a-z, 0-9 and _. */
#define MAPPING_END_USER_ID_MIN 3
#define MAPPING_END_USER_ID_MAX 24

/* One line of the map file. */
struct mapping_entry {
	char *user;
	char *end_user_id;
	unsigned line; /* in the map file, for error messages */
};

/* The largest map file read, in bytes. */
#define MAPPING_MAP_MAX (16 * 1024 * 1024)

struct mapping_rules {
	const char *template;
	bool lowercase;	   /* turn A-Z into a-z in the result */
	bool strip_domain; /* %u stands for the name without its domain */
	const struct mapping_entry *map; /* sorted by user, may be NULL */
	size_t map_len;
};

/*
 * Checks a template.  Known placeholders: %u the user name, %U the uid,
 * %d the domain of "user@domain" or "DOMAIN\user", %n the name without
 * the domain, %h the short host name, %% a percent sign.
 */
int mapping_check_template(const char *template, char **ret_error);

/*
 * Maps user (with its uid, for %U) to an EndUserId and checks the result.
 * Returns 0 and a malloc'd EndUserId, or -EINVAL and a message naming the
 * user and the result in *ret_error.
 */
int mapping_end_user_id(const struct mapping_rules *rules, const char *user,
			uid_t uid, char **ret_end_user_id, char **ret_error);

bool mapping_end_user_id_valid(const char *end_user_id);

/* Returns the EndUserId the map file gives user, or NULL. */
const char *mapping_map_lookup(const struct mapping_rules *rules,
			       const char *user);

/*
 * Reads a map file: one "linux-user end-user-id" pair a line, blank lines
 * and lines starting with # ignored.  Returns 0 with the entries sorted
 * by user, or a negative errno and "FILE:LINE: problem" in *ret_error.
 */
int mapping_load_map(const char *path, struct mapping_entry **ret_map,
		     size_t *ret_len, char **ret_error);

void mapping_free_map(struct mapping_entry *map, size_t len);

#endif
