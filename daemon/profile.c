/*
 * Profile matching, inheritance and the API's rules for the parameters.
 * The valid values come from the GetConnectionTicket reference of
 * appstream-center 2021-09-01.
 */

#include "config.h"

#include "profile.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const product_types[] = { "CloudApp", "AndroidCloud",
					     NULL };
static const char *const access_types[] = { "INTERNET", "VPC", NULL };
static const char *const biz_region_ids[] = { "cn-shenzhen", "cn-beijing",
					      "cn-shanghai", "cn-zhangjiakou",
					      "cn-hangzhou", NULL };

static bool list_has(char *const *list, const char *name)
{
	for (char *const *p = list; p && *p; p++)
		if (strcmp(*p, name) == 0)
			return true;
	return false;
}

bool profile_matches(const struct ticket_profile *profile,
		     const struct profile_subject *subject)
{
	bool found = false;

	if (profile->users) {
		for (char **p = profile->users; *p && !found; p++)
			found = fnmatch(*p, subject->user, FNM_NOESCAPE) == 0;
		if (!found)
			return false;
	}
	if (profile->groups) {
		found = false;
		for (char **p = profile->groups; *p && !found; p++)
			found = list_has(subject->groups, *p);
		if (!found)
			return false;
	}
	if (profile->services)
		return subject->service &&
		       list_has(profile->services, subject->service);
	return true;
}

static bool value_valid(const char *value, const char *const *valid)
{
	for (const char *const *p = valid; *p; p++)
		if (strcmp(value, *p) == 0)
			return true;
	return false;
}

static char *invalid_value(const char *setting, const char *value,
			   const char *const *valid)
{
	char allowed[256] = "";
	char *message = NULL;

	for (const char *const *p = valid; *p; p++) {
		strncat(allowed, *p, sizeof(allowed) - strlen(allowed) - 4);
		if (p[1])
			strncat(allowed, ", ",
				sizeof(allowed) - strlen(allowed) - 1);
	}
	if (asprintf(&message, "setting %s: \"%s\" is not valid; use one of %s",
		     setting, value, allowed) < 0)
		return NULL;
	return message;
}

static size_t list_length(char *const *list)
{
	size_t n = 0;

	while (list && list[n])
		n++;
	return n;
}

char *profile_check(const struct ticket_profile *p)
{
	char *message = NULL;
	size_t groups = list_length(p->app_instance_group_ids);

	if (!p->app_id)
		return strdup("setting app_id: missing; the first "
			      "GetConnectionTicket call needs an AppId");
	if (!value_valid(p->product_type, product_types))
		return invalid_value("product_type", p->product_type,
				     product_types);
	if (p->access_type && !value_valid(p->access_type, access_types))
		return invalid_value("access_type", p->access_type,
				     access_types);
	if (p->biz_region_id && !value_valid(p->biz_region_id, biz_region_ids))
		return invalid_value("biz_region_id", p->biz_region_id,
				     biz_region_ids);
	if (p->app_instance_id && groups != 1) {
		if (asprintf(&message,
			     "setting app_instance_id: needs exactly one "
			     "item in app_instance_group_ids, not %zu",
			     groups) < 0)
			return NULL;
		return message;
	}
	if (p->app_instance_persistent_id && groups == 0)
		return strdup("setting app_instance_persistent_id: needs "
			      "app_instance_group_ids as well");
	if (groups > PROFILE_GROUP_IDS_MAX) {
		if (asprintf(&message,
			     "setting app_instance_group_ids: %zu items, "
			     "more than %d",
			     groups, PROFILE_GROUP_IDS_MAX) < 0)
			return NULL;
		return message;
	}
	return NULL;
}

char **profile_copy_list(char *const *list)
{
	size_t n = list_length(list);
	char **copy;

	if (!list)
		return NULL;
	copy = calloc(n + 1, sizeof(*copy));
	if (!copy)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		copy[i] = strdup(list[i]);
		if (!copy[i]) {
			profile_free_list(copy);
			return NULL;
		}
	}
	return copy;
}

void profile_free_list(char **list)
{
	for (char **p = list; p && *p; p++)
		free(*p);
	free(list);
}

/* Copies a string member from defaults when the profile leaves it unset. */
static int inherit_string(char **member, const char *value)
{
	if (*member || !value)
		return 0;
	*member = strdup(value);
	return *member ? 0 : -ENOMEM;
}

static int inherit_list(char ***member, char *const *value)
{
	if (*member || !value)
		return 0;
	*member = profile_copy_list(value);
	return *member ? 0 : -ENOMEM;
}

int profile_inherit(struct ticket_profile *profile,
		    const struct ticket_profile *defaults)
{
	int r = 0;

#define X(member, api_name)                                                    \
	if (r == 0)                                                            \
		r = inherit_string(&profile->member, defaults->member);
	PROFILE_PARAMETERS
#undef X
	if (r == 0)
		r = inherit_list(&profile->app_instance_group_ids,
				 defaults->app_instance_group_ids);
	if (r == 0)
		r = inherit_list(&profile->client_command,
				 defaults->client_command);
	return r;
}

void profile_clear(struct ticket_profile *profile)
{
	free(profile->name);
	profile_free_list(profile->users);
	profile_free_list(profile->groups);
	profile_free_list(profile->services);
#define X(member, api_name) free(profile->member);
	PROFILE_PARAMETERS
#undef X
	profile_free_list(profile->app_instance_group_ids);
	profile_free_list(profile->client_command);
	memset(profile, 0, sizeof(*profile));
}
