/*
 * User policy of the daemon.  It serves no root or system account (uids
 * below min_uid), no user in deny_users and no member of a group in
 * deny_groups.
 */

#ifndef CLOUDAPP_POLICY_H
#define CLOUDAPP_POLICY_H

#include <sys/types.h>

#include "conf.h"

/*
 * Looks user up and checks that it is served.  Returns 0 with its uid,
 * -ENOENT when the user is unknown, or -EPERM.  On failure *ret_error
 * contains the reason, with the user and the setting.
 */
int policy_check_user(const struct daemon_config *config, const char *user,
		      uid_t *ret_uid, char **ret_error);

/*
 * Returns the names of the groups user belongs to, supplementary groups
 * included, NULL-terminated and malloc'd, or NULL when they cannot be
 * read.  Free with profile_free_list().
 */
char **policy_user_groups(const char *user);

#endif
