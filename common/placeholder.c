/*
 * client_command placeholders.  All but ticket_file name a member of the
 * GetTicket reply, so the list follows the reply's members.
 */

#include "config.h"

#include "placeholder.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Sorted for bsearch(). */
static const char *const placeholder_names[] = {
	"app_instance_group_id",
	"app_instance_id",
	"app_instance_persistent_id",
	"avatar_id",
	"biz_region_id",
	"end_user_id",
	"os_type",
	"request_id",
	"task_id",
	"task_status",
	"tenant_id",
	"ticket_file",
	"user",
};

static int compare_name(const void *key, const void *entry)
{
	return strcmp(key, *(const char *const *)entry);
}

bool cloudapp_placeholder_known(const char *name)
{
	return bsearch(name, placeholder_names,
		       sizeof(placeholder_names) / sizeof(placeholder_names[0]),
		       sizeof(placeholder_names[0]), compare_name) != NULL;
}

bool cloudapp_placeholder_check(const char *argument, char **ret_error)
{
	int r = 0;

	*ret_error = NULL;
	for (const char *p = argument; *p; p++) {
		const char *end;
		char *name;

		if (p[0] != '%')
			continue;
		if (p[1] == '%') {
			p++;
			continue;
		}
		if (p[1] != '{')
			continue;
		end = strchr(p + 2, '}');
		if (!end) {
			r = asprintf(ret_error,
				     "unterminated placeholder in argument "
				     "\"%s\"; write %%%% for a literal %%",
				     argument);
			goto fail;
		}
		name = strndup(p + 2, (size_t)(end - (p + 2)));
		if (!name)
			return false;
		if (strcmp(name, "ticket") == 0)
			r = asprintf(ret_error,
				     "no placeholder %%{ticket} in \"%s\": the "
				     "ticket reaches the client only as a file, "
				     "use %%{ticket_file}",
				     argument);
		else if (!cloudapp_placeholder_known(name))
			r = asprintf(ret_error,
				     "unknown placeholder %%{%s} in argument "
				     "\"%s\"; see cloudapp.conf(5) for the list",
				     name, argument);
		free(name);
		if (r < 0 || *ret_error)
			goto fail;
		p = end;
	}
	return true;

fail:
	if (r < 0)
		*ret_error = NULL;
	return false;
}
