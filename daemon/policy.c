/*
 * The served-user policy.  Group membership includes supplementary
 * groups, as getgrouplist() reports them through NSS.
 */

#include "config.h"

#include "policy.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Buffer size for one getpwnam_r() or getgrgid_r() result. */
#define POLICY_NSS_BUFFER 16384

/* Most groups looked at for one user. */
#define POLICY_GROUPS_MAX 1024

static int policy_deny(char **ret_error, const char *user,
		       const char *reason, const char *setting)
{
	if (asprintf(ret_error, "user %s is not served: %s (%s in the "
				"configuration)",
		     user, reason, setting) < 0)
		*ret_error = NULL;
	return -EPERM;
}

static bool list_contains(char **list, const char *name)
{
	for (char **p = list; p && *p; p++)
		if (strcmp(*p, name) == 0)
			return true;
	return false;
}

/* Returns the denied group user belongs to, malloc'd, or NULL. */
static char *denied_group(const struct daemon_config *config,
			  const char *user, gid_t gid)
{
	gid_t groups[POLICY_GROUPS_MAX];
	int count = POLICY_GROUPS_MAX;
	char buf[POLICY_NSS_BUFFER];

	/* NOTE: a user in more than POLICY_GROUPS_MAX groups is checked
	 * against the first ones only. */
	getgrouplist(user, gid, groups, &count);
	if (count > POLICY_GROUPS_MAX)
		count = POLICY_GROUPS_MAX;
	for (int i = 0; i < count; i++) {
		struct group group, *result = NULL;

		if (getgrgid_r(groups[i], &group, buf, sizeof(buf), &result) ==
			    0 &&
		    result && list_contains(config->deny_groups, group.gr_name))
			return strdup(group.gr_name);
	}
	return NULL;
}

int policy_check_user(const struct daemon_config *config, const char *user,
		      uid_t *ret_uid, char **ret_error)
{
	struct passwd pw, *result = NULL;
	char buf[POLICY_NSS_BUFFER], reason[128];
	char *group;

	*ret_error = NULL;
	if (getpwnam_r(user, &pw, buf, sizeof(buf), &result) != 0 || !result) {
		if (asprintf(ret_error, "user %s is not known to this system",
			     user) < 0)
			*ret_error = NULL;
		return -ENOENT;
	}
	*ret_uid = pw.pw_uid;
	if (pw.pw_uid < config->min_uid) {
		snprintf(reason, sizeof(reason), "its uid %u is below %u",
			 (unsigned)pw.pw_uid, config->min_uid);
		return policy_deny(ret_error, user, reason, "min_uid");
	}
	if (list_contains(config->deny_users, user))
		return policy_deny(ret_error, user, "the user is listed",
				   "deny_users");
	if (!config->deny_groups)
		return 0;
	group = denied_group(config, user, pw.pw_gid);
	if (group) {
		snprintf(reason, sizeof(reason), "it is a member of group %s",
			 group);
		free(group);
		return policy_deny(ret_error, user, reason, "deny_groups");
	}
	return 0;
}

char **policy_user_groups(const char *user)
{
	struct passwd pw, *result = NULL;
	gid_t gids[POLICY_GROUPS_MAX];
	int count = POLICY_GROUPS_MAX;
	char buf[POLICY_NSS_BUFFER];
	char **names;
	size_t n = 0;

	if (getpwnam_r(user, &pw, buf, sizeof(buf), &result) != 0 || !result)
		return NULL;
	getgrouplist(user, pw.pw_gid, gids, &count);
	if (count > POLICY_GROUPS_MAX)
		count = POLICY_GROUPS_MAX;
	names = calloc((size_t)count + 1, sizeof(*names));
	if (!names)
		return NULL;
	for (int i = 0; i < count; i++) {
		struct group group, *found = NULL;

		if (getgrgid_r(gids[i], &group, buf, sizeof(buf), &found) == 0 &&
		    found && (names[n] = strdup(group.gr_name)))
			n++;
	}
	return names;
}
