/*
 * Maps a Linux user name to an App Streaming EndUserId (a convenience
 * account name) through the end_user_id template.
 */

#ifndef CLOUDAPP_MAPPING_H
#define CLOUDAPP_MAPPING_H

#include <stdbool.h>

/* Convenience account names: 3 to 24 characters of a-z, 0-9 and _. */
#define MAPPING_END_USER_ID_MIN 3
#define MAPPING_END_USER_ID_MAX 24

/* Checks a template: only %u and %% are known.  *ret_error on failure. */
int mapping_check_template(const char *template, char **ret_error);

/*
 * Expands template for user ("%u" is the user name, "%%" a percent sign)
 * and checks the result.  Returns 0 and a malloc'd EndUserId, or -EINVAL
 * and a message naming the user and the result in *ret_error.
 */
int mapping_end_user_id(const char *template, const char *user,
			char **ret_end_user_id, char **ret_error);

bool mapping_end_user_id_valid(const char *end_user_id);

#endif
