/*
 * Profiles: the app a user gets.  The configuration's top-level request
 * settings form the default profile.  Each entry of "profiles" may match
 * users by name pattern, group and PAM service, and overrides request
 * parameters and the client command.  The first profile that matches wins.
 */

#ifndef CLOUDAPP_PROFILE_H
#define CLOUDAPP_PROFILE_H

#include <stdbool.h>
#include <stddef.h>

/* GetConnectionTicket parameters a profile sets, by their API names.  The
 * order is the order of the struct's string members below. */
#define PROFILE_PARAMETERS                                                     \
	X(product_type, "ProductType")                                         \
	X(app_id, "AppId")                                                     \
	X(app_version, "AppVersion")                                           \
	X(app_start_param, "AppStartParam")                                    \
	X(environment_config, "EnvironmentConfig")                             \
	X(biz_region_id, "BizRegionId")                                        \
	X(app_instance_id, "AppInstanceId")                                    \
	X(app_instance_persistent_id, "AppInstancePersistentId")               \
	X(access_type, "AccessType")                                           \
	X(app_policy_id, "AppPolicyId")

/* The most AppInstanceGroupIdList items accepted. */
#define PROFILE_GROUP_IDS_MAX 100

struct ticket_profile {
	char *name;
	/* Match criteria; NULL matches anything. */
	char **users;	 /* fnmatch() patterns */
	char **groups;	 /* group names, supplementary groups included */
	char **services; /* PAM service names */
#define X(member, api_name) char *member;
	PROFILE_PARAMETERS
#undef X
	char **app_instance_group_ids; /* AppInstanceGroupIdList, or NULL */
	char **client_command;
};

/* Attributes a user is matched on. */
struct profile_subject {
	const char *user;
	char *const *groups;  /* NULL-terminated group names, or NULL */
	const char *service; /* PAM service, or NULL outside a login */
};

bool profile_matches(const struct ticket_profile *profile,
		     const struct profile_subject *subject);

/*
 * Checks the API's rules for a complete profile: ProductType, AccessType
 * and BizRegionId among their documented values, AppId present,
 * AppInstanceId with exactly one AppInstanceGroupIdList item, and
 * AppInstancePersistentId with at least one.  Returns NULL when they hold,
 * else a malloc'd message naming the setting.
 */
char *profile_check(const struct ticket_profile *profile);

/* Fills the settings that profile leaves unset from defaults. */
int profile_inherit(struct ticket_profile *profile,
		    const struct ticket_profile *defaults);

void profile_clear(struct ticket_profile *profile);

char **profile_copy_list(char *const *list);
void profile_free_list(char **list);

#endif
