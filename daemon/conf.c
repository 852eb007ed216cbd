/*
 * Loads /etc/cloudapp/cloudapp.conf with libconfig and checks every
 * setting, so that a running daemon never meets a bad value.  Each error
 * names the file, the line and the setting.
 */

#include "config.h"

#include "conf.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "credentials.h"
#include "mapping.h"
#include "placeholder.h"
#include "util.h"

/* The settings the daemon reads.  Any other name is a likely typo. */
static const char *const config_known_settings[] = {
	"access_key_id",
	"access_type",
	"access_key_secret_file",
	"app_id",
	"app_instance_group_ids",
	"app_instance_id",
	"app_instance_persistent_id",
	"app_policy_id",
	"app_start_param",
	"app_version",
	"biz_region_id",
	"ca_file",
	"client_command",
	"client_idle_timeout",
	"deny_groups",
	"deny_users",
	"end_user_id",
	"end_user_id_lowercase",
	"end_user_id_map",
	"end_user_id_strip_domain",
	"endpoint",
	"environment_config",
	"idle_timeout",
	"max_connections",
	"max_connections_per_uid",
	"max_requests_per_second",
	"max_requests_per_uid",
	"max_tasks",
	"min_uid",
	"pickup_timeout",
	"poll_backoff",
	"poll_interval",
	"poll_interval_max",
	"product_type",
	"profiles",
	"ram_role_arn",
	"request_timeout",
	"role_duration",
	"role_session_name",
	"security_token_file",
	"signature_version",
	"sts_endpoint",
	"ticket_timeout",
};

static void config_report(char **ret_error, const char *file, int line,
			  const char *setting, const char *format, ...)
	__attribute__((format(printf, 5, 6)));

/*
 * Stores the message "FILE:LINE: setting SETTING: DETAIL" in *ret_error
 * and evaluates to -EINVAL.  It is a macro so that the -EINVAL is visible
 * at each call, because clang's static analyzer does not inline variadic
 * functions and otherwise assumes that an error may return 0.
 */
#define config_error(...) (config_report(__VA_ARGS__), -EINVAL)

static void config_report(char **ret_error, const char *file, int line,
			  const char *setting, const char *format, ...)
{
	char detail[1024];
	va_list ap;

	va_start(ap, format);
	vsnprintf(detail, sizeof(detail), format, ap);
	va_end(ap);

	if (asprintf(ret_error, "%s:%d: setting %s: %s", file, line, setting,
		     detail) < 0)
		*ret_error = NULL;
}

/*
 * The main configuration file and its drop-ins, read in name order: a
 * setting in a later file overrides the same setting in an earlier one.
 */
struct config_source {
	config_t layers[CONFIG_DROP_INS_MAX + 1];
	size_t n;
};

/* Returns the setting name from the last file that has it, or NULL. */
static config_setting_t *source_lookup(const struct config_source *cfg,
				       const char *name)
{
	for (size_t i = cfg->n; i-- > 0;) {
		config_setting_t *s = config_lookup(&cfg->layers[i], name);

		if (s)
			return s;
	}
	return NULL;
}

/* Returns the file a setting comes from, or fallback. */
static const char *setting_file(const config_setting_t *s,
				const char *fallback)
{
	const char *file = s ? config_setting_source_file(s) : NULL;

	return file ? file : fallback;
}

/* Returns the file that sets name, or fallback when none does. */
static const char *setting_path(const struct config_source *cfg,
				const char *name, const char *fallback)
{
	return setting_file(source_lookup(cfg, name), fallback);
}

/* Returns the setting's line, or 0 when it is missing. */
static int setting_line(const struct config_source *cfg, const char *name)
{
	config_setting_t *s = source_lookup(cfg, name);

	return s ? (int)config_setting_source_line(s) : 0;
}

/*
 * Copies the string setting name into *ret.  A missing optional setting
 * leaves *ret NULL; a missing required one is an error.
 */
static int config_get_string(const struct config_source *cfg, const char *path,
			     const char *name, bool required, char **ret,
			     char **ret_error)
{
	config_setting_t *s = source_lookup(cfg, name);
	const char *value;

	path = setting_file(s, path);
	*ret = NULL;
	if (!s) {
		if (!required)
			return 0;
		return config_error(ret_error, path, 0, name,
				    "missing; add %s = \"...\";", name);
	}
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return config_error(ret_error, path,
				    config_setting_source_line(s), name,
				    "must be a string in double quotes");
	value = config_setting_get_string(s);
	if (!*value)
		return config_error(ret_error, path,
				    config_setting_source_line(s), name,
				    "must not be empty");
	if (strlen(value) > CONFIG_STRING_MAX)
		return config_error(ret_error, path,
				    config_setting_source_line(s), name,
				    "longer than %d bytes", CONFIG_STRING_MAX);
	if (!cloudapp_utf8_valid(value, strlen(value)))
		return config_error(ret_error, path,
				    config_setting_source_line(s), name,
				    "not valid UTF-8");
	*ret = strdup(value);
	return *ret ? 0 : -ENOMEM;
}

/*
 * Checks that an integer setting contains the number written in the file.
 * libconfig 1.5 wraps an integer past 32 bits without the L suffix
 * silently, so "ticket_timeout = 4294967297;" would read as 1.  Returns
 * false when the text on the setting's line is a different number.
 */
static bool config_int_matches_text(const char *path, int line,
				    const char *name, long long value)
{
	char text[1024];
	FILE *file;
	bool matches = true;

	file = fopen(path, "re");
	if (!file)
		return true;
	for (int i = 1; fgets(text, sizeof(text), file); i++) {
		const char *p;
		char *end;
		long long written;

		if (i != line)
			continue;
		p = strstr(text, name);
		if (p)
			p = strpbrk(p + strlen(name), "=:");
		if (!p)
			break;
		errno = 0;
		written = strtoll(p + 1, &end, 0);
		matches = errno == ERANGE ? false :
			  end == p + 1	  ? true :
					    written == value;
		break;
	}
	fclose(file);
	return matches;
}

/* Converts milliseconds to seconds for messages.  Every duration the
 * configuration allows is far below 2^53 ms, so the double conversion is
 * exact. */
static double ms_to_seconds(int64_t ms)
{
	return (double)ms / 1000.0;
}

/* Reads a duration in seconds (integer or float) into milliseconds. */
static int config_get_seconds(const struct config_source *cfg, const char *path,
			      const char *name, int64_t min_ms, int64_t max_ms,
			      int64_t *ret_ms, char **ret_error)
{
	config_setting_t *s = source_lookup(cfg, name);
	double seconds;

	path = setting_file(s, path);
	if (!s)
		return 0;
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
		seconds = config_setting_get_int(s);
		if (!config_int_matches_text(path,
					     config_setting_source_line(s),
					     name, config_setting_get_int(s)))
			return config_error(ret_error, path,
					    config_setting_source_line(s),
					    name,
					    "the number is too large; use %g "
					    "to %g",
					    ms_to_seconds(min_ms),
					    ms_to_seconds(max_ms));
		break;
	case CONFIG_TYPE_INT64:
		seconds = (double)config_setting_get_int64(s);
		break;
	case CONFIG_TYPE_FLOAT:
		seconds = config_setting_get_float(s);
		break;
	default:
		return config_error(ret_error, path,
				    config_setting_source_line(s), name,
				    "must be a number of seconds");
	}
	if (!(seconds * 1000 >= (double)min_ms &&
	      seconds * 1000 <= (double)max_ms))
		return config_error(ret_error, path,
				    config_setting_source_line(s), name,
				    "%g seconds is out of range; use %g to %g",
				    seconds, ms_to_seconds(min_ms),
				    ms_to_seconds(max_ms));
	*ret_ms = (int64_t)(seconds * 1000 + 0.5);
	return 0;
}

/* Reads a number (integer or float) within [min, max]. */
static int config_get_number(const struct config_source *cfg, const char *path,
			     const char *name, double min, double max,
			     double *ret, char **ret_error)
{
	config_setting_t *s = source_lookup(cfg, name);
	double value;

	path = setting_file(s, path);
	if (!s)
		return 0;
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
		value = config_setting_get_int(s);
		break;
	case CONFIG_TYPE_INT64:
		value = (double)config_setting_get_int64(s);
		break;
	case CONFIG_TYPE_FLOAT:
		value = config_setting_get_float(s);
		break;
	default:
		return config_error(ret_error, path,
				    config_setting_source_line(s), name,
				    "must be a number");
	}
	if (!(value >= min && value <= max))
		return config_error(ret_error, path,
				    config_setting_source_line(s), name,
				    "%g is out of range; use %g to %g", value,
				    min, max);
	*ret = value;
	return 0;
}

/* Reads a whole number within [min, max]. */
static int config_get_count(const struct config_source *cfg, const char *path,
			    const char *name, unsigned min, unsigned max,
			    unsigned *ret, char **ret_error)
{
	config_setting_t *s = source_lookup(cfg, name);
	long long value;

	path = setting_file(s, path);
	if (!s)
		return 0;
	if (config_setting_type(s) == CONFIG_TYPE_INT &&
	    !config_int_matches_text(path, config_setting_source_line(s),
				     name, config_setting_get_int(s)))
		return config_error(ret_error, path,
				    config_setting_source_line(s), name,
				    "the number is too large; use %u to %u",
				    min, max);
	if (config_setting_type(s) == CONFIG_TYPE_INT)
		value = config_setting_get_int(s);
	else if (config_setting_type(s) == CONFIG_TYPE_INT64)
		value = config_setting_get_int64(s);
	else
		return config_error(ret_error, path,
				    config_setting_source_line(s), name,
				    "must be a whole number");
	if (value < min || value > max)
		return config_error(ret_error, path,
				    config_setting_source_line(s), name,
				    "%lld is out of range; use %u to %u", value,
				    min, max);
	*ret = (unsigned)value;
	return 0;
}

/* Checks the ":port" after a host or "[IPv6]", when there is one. */
static bool config_port_valid(const char *host)
{
	const char *bracket = strrchr(host, ']');
	const char *colon = strrchr(bracket ? bracket : host, ':');
	char *end;
	long port;

	if (host[0] == '[' && !bracket)
		return false;
	if (!colon)
		return true;
	if (colon == host || !colon[1] || strlen(colon + 1) > 5)
		return false;
	port = strtol(colon + 1, &end, 10);
	return *end == '\0' && port >= 1 && port <= 65535;
}

/* Returns the value of a string setting s that is non-empty, valid UTF-8
 * and at most CONFIG_STRING_MAX bytes, or NULL. */
static const char *setting_string(const config_setting_t *s)
{
	const char *value;

	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return NULL;
	value = config_setting_get_string(s);
	if (!*value || strlen(value) > CONFIG_STRING_MAX ||
	    !cloudapp_utf8_valid(value, strlen(value)))
		return NULL;
	return value;
}

static int config_get_bool(const struct config_source *cfg, const char *path,
			   const char *name, bool *ret, char **ret_error)
{
	config_setting_t *s = source_lookup(cfg, name);

	path = setting_file(s, path);
	if (!s)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return config_error(ret_error, path,
				    config_setting_source_line(s), name,
				    "must be true or false");
	*ret = config_setting_get_bool(s);
	return 0;
}

/* Reads a list of non-empty strings into a NULL-terminated array. */
static int config_get_string_list(const struct config_source *cfg, const char *path,
				  const char *name, char ***ret,
				  char **ret_error)
{
	config_setting_t *s = source_lookup(cfg, name);
	int n;

	path = setting_file(s, path);
	*ret = NULL;
	if (!s)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_LIST &&
	    config_setting_type(s) != CONFIG_TYPE_ARRAY)
		return config_error(ret_error, path,
				    config_setting_source_line(s), name,
				    "must be a list of strings, e.g. "
				    "[\"a\", \"b\"]");
	n = config_setting_length(s);
	*ret = calloc((size_t)n + 1, sizeof(char *));
	if (!*ret)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		config_setting_t *item = config_setting_get_elem(s, (unsigned)i);
		const char *value;

		value = setting_string(item);
		if (!value)
			return config_error(ret_error, path,
					    config_setting_source_line(s),
					    name,
					    "item %d is not a non-empty string "
					    "of valid UTF-8 of at most %d bytes",
					    i + 1, CONFIG_STRING_MAX);
		(*ret)[i] = strdup(value);
		if (!(*ret)[i])
			return -ENOMEM;
	}
	return 0;
}

/* Reads the settings of user mapping and of who is served. */
static int config_get_users(struct daemon_config *config, const struct config_source *cfg,
			    char **ret_error)
{
	const char *path = config->path;
	char *detail = NULL;
	int r;

	config->min_uid = CONFIG_MIN_UID_DEFAULT;
	r = config_get_bool(cfg, path, "end_user_id_lowercase",
			    &config->end_user_id_lowercase, ret_error);
	if (r == 0)
		r = config_get_bool(cfg, path, "end_user_id_strip_domain",
				    &config->end_user_id_strip_domain,
				    ret_error);
	if (r == 0)
		r = config_get_string(cfg, path, "end_user_id_map", false,
				      &config->end_user_id_map, ret_error);
	if (r == 0)
		r = config_get_count(cfg, path, "min_uid", 0, 4294967294u,
				     &config->min_uid, ret_error);
	if (r == 0)
		r = config_get_string_list(cfg, path, "deny_users",
					   &config->deny_users, ret_error);
	if (r == 0)
		r = config_get_string_list(cfg, path, "deny_groups",
					   &config->deny_groups, ret_error);
	if (r < 0 || !config->end_user_id_map)
		return r;

	r = mapping_load_map(config->end_user_id_map, &config->map,
			     &config->map_len, &detail);
	if (r < 0) {
		config_report(ret_error, setting_path(cfg, "end_user_id_map", path),
			      setting_line(cfg, "end_user_id_map"),
			      "end_user_id_map", "%s",
			      detail ? detail : strerror(-r));
		free(detail);
	}
	return r;
}

void config_mapping_rules(const struct daemon_config *config,
			  struct mapping_rules *rules)
{
	rules->template = config->end_user_id;
	rules->lowercase = config->end_user_id_lowercase;
	rules->strip_domain = config->end_user_id_strip_domain;
	rules->map = config->map;
	rules->map_len = config->map_len;
}

static void free_string_list(char **list)
{
	if (!list)
		return;
	for (char **p = list; *p; p++)
		free(*p);
	free(list);
}

/* The members a profile may have besides the request parameters. */
static const char *const profile_known_members[] = {
	"app_instance_group_ids", "client_command", "groups", "name",
	"services", "users",
};

static bool profile_member_known(const char *name)
{
#define X(member, api_name)                                                    \
	if (strcmp(name, #member) == 0)                                        \
		return true;
	PROFILE_PARAMETERS
#undef X
	for (size_t i = 0; i < sizeof(profile_known_members) /
				       sizeof(profile_known_members[0]);
	     i++)
		if (strcmp(name, profile_known_members[i]) == 0)
			return true;
	return false;
}

static char **setting_string_list(const config_setting_t *s)
{
	int n = config_setting_length(s);
	char **list;

	if (config_setting_type(s) != CONFIG_TYPE_LIST &&
	    config_setting_type(s) != CONFIG_TYPE_ARRAY)
		return NULL;
	list = calloc((size_t)n + 1, sizeof(*list));
	if (!list)
		return NULL;
	for (int i = 0; i < n; i++) {
		const char *value =
			setting_string(config_setting_get_elem(s, (unsigned)i));

		if (!value || !(list[i] = strdup(value))) {
			profile_free_list(list);
			return NULL;
		}
	}
	return list;
}

/* Reads the request parameters present in group into profile. */
static int profile_read_parameters(const config_setting_t *group,
				   const char *path, const char *label,
				   struct ticket_profile *profile,
				   char **ret_error)
{
	config_setting_t *s;

#define X(member, api_name)                                                    \
	s = config_setting_get_member(group, #member);                         \
	if (s) {                                                               \
		const char *value = setting_string(s);                         \
		if (!value)                                                    \
			return config_error(ret_error, setting_file(s, path),  \
					    config_setting_source_line(s),     \
					    #member,                           \
					    "%smust be a non-empty string of " \
					    "valid UTF-8",                     \
					    label);                            \
		free(profile->member);                                         \
		profile->member = strdup(value);                               \
		if (!profile->member)                                          \
			return -ENOMEM;                                        \
	}
	PROFILE_PARAMETERS
#undef X
	s = config_setting_get_member(group, "app_instance_group_ids");
	if (s) {
		profile_free_list(profile->app_instance_group_ids);
		profile->app_instance_group_ids = setting_string_list(s);
		if (!profile->app_instance_group_ids)
			return config_error(ret_error, setting_file(s, path),
					    config_setting_source_line(s),
					    "app_instance_group_ids",
					    "%smust be a list of non-empty "
					    "strings",
					    label);
	}
	return 0;
}

/* Reads one entry of "profiles". */
static int profile_read(const config_setting_t *group, const char *path,
			struct ticket_profile *profile, char **ret_error)
{
	static const struct {
		const char *name;
		size_t offset;
	} lists[] = {
		{ "users", offsetof(struct ticket_profile, users) },
		{ "groups", offsetof(struct ticket_profile, groups) },
		{ "services", offsetof(struct ticket_profile, services) },
		{ "client_command",
		  offsetof(struct ticket_profile, client_command) },
	};
	const char *file = setting_file(group, path);
	int line = (int)config_setting_source_line(group);
	config_setting_t *s;
	char label[128];
	int r;

	if (config_setting_type(group) != CONFIG_TYPE_GROUP)
		return config_error(ret_error, file, line, "profiles",
				    "each profile must be a group in { }");
	s = config_setting_get_member(group, "name");
	if (!s)
		return config_error(ret_error, file, line, "profiles",
				    "a profile needs a name = \"...\";");
	if (!setting_string(s))
		return config_error(ret_error, file, line, "name",
				    "a profile's name must be a non-empty "
				    "string of valid UTF-8");
	profile->name = strdup(setting_string(s));
	if (!profile->name)
		return -ENOMEM;
	snprintf(label, sizeof(label), "in profile %s: ", profile->name);
	for (int i = 0; i < config_setting_length(group); i++) {
		config_setting_t *m =
			config_setting_get_elem(group, (unsigned)i);

		if (!profile_member_known(config_setting_name(m)))
			return config_error(ret_error, setting_file(m, path),
					    config_setting_source_line(m),
					    config_setting_name(m),
					    "%sunknown setting; see "
					    "cloudapp.conf(5)",
					    label);
	}
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		char ***member = (char ***)((char *)profile + lists[i].offset);

		s = config_setting_get_member(group, lists[i].name);
		if (!s)
			continue;
		*member = setting_string_list(s);
		if (!*member || !**member)
			return config_error(ret_error, setting_file(s, path),
					    config_setting_source_line(s),
					    lists[i].name,
					    "%smust be a non-empty list of "
					    "non-empty strings",
					    label);
	}
	r = profile_read_parameters(group, path, label, profile, ret_error);
	if (r < 0)
		return r;
	if (profile->client_command && profile->client_command[0][0] != '/')
		return config_error(ret_error, file, line, "client_command",
				    "%sthe program \"%s\" must be an absolute "
				    "path",
				    label, profile->client_command[0]);
	for (char **arg = profile->client_command; arg && *arg; arg++) {
		char *detail = NULL;

		if (cloudapp_placeholder_check(*arg, &detail))
			continue;
		config_report(ret_error, file, line, "client_command", "%s%s",
			      label, detail ? detail : "out of memory");
		free(detail);
		return -EINVAL;
	}
	return 0;
}

/* Builds the default profile from the top-level settings. */
static int config_get_defaults(struct daemon_config *config,
			       const struct config_source *cfg,
			       char **ret_error)
{
	struct ticket_profile *d = &config->defaults;
	char *problem;
	int r = 0;

	d->name = strdup("default");
	d->product_type = strdup(config->product_type);
	d->app_id = strdup(config->app_id);
	if (!d->name || !d->product_type || !d->app_id)
		return -ENOMEM;
	if (config->client_command) {
		d->client_command = profile_copy_list(config->client_command);
		if (!d->client_command)
			return -ENOMEM;
	}
	for (size_t i = 0; i < cfg->n && r == 0; i++)
		r = profile_read_parameters(config_root_setting(&cfg->layers[i]),
					    config->path, "", d, ret_error);
	if (r < 0)
		return r;
	problem = profile_check(d);
	if (problem) {
		char name[64] = "";
		const char *detail = problem;

		/* The message starts with "setting NAME: ": report it at
		 * the file and line that set NAME. */
		if (sscanf(problem, "setting %63[a-z_]: ", name) == 1)
			detail = problem + strlen("setting ") + strlen(name) + 2;
		config_report(ret_error, setting_path(cfg, name, config->path),
			      setting_line(cfg, name), name, "%s", detail);
		free(problem);
		return -EINVAL;
	}
	return 0;
}

/* Reads "profiles", each completed from the defaults and checked. */
static int config_get_profiles(struct daemon_config *config,
			       const struct config_source *cfg,
			       char **ret_error)
{
	config_setting_t *s = source_lookup(cfg, "profiles");
	const char *path;
	int n;

	if (!s)
		return 0;
	path = setting_file(s, config->path);
	if (config_setting_type(s) != CONFIG_TYPE_LIST)
		return config_error(ret_error, path,
				    config_setting_source_line(s), "profiles",
				    "must be a list of groups: ( { ... }, "
				    "{ ... } )");
	n = config_setting_length(s);
	config->profiles = calloc((size_t)n + 1, sizeof(*config->profiles));
	if (!config->profiles)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		config_setting_t *group = config_setting_get_elem(s, (unsigned)i);
		struct ticket_profile *profile = &config->profiles[i];
		char *problem;
		int r;

		config->n_profiles++;
		r = profile_read(group, path, profile, ret_error);
		for (int k = 0; r == 0 && k < i; k++)
			if (strcmp(config->profiles[k].name, profile->name) ==
			    0)
				return config_error(
					ret_error, setting_file(group, path),
					config_setting_source_line(group),
					"profiles",
					"two profiles are named %s; names "
					"must be unique",
					profile->name);
		if (r == 0)
			r = profile_inherit(profile, &config->defaults);
		if (r < 0)
			return r;
		problem = profile_check(profile);
		if (problem) {
			config_report(ret_error, setting_file(group, path),
				      config_setting_source_line(group),
				      "profiles", "profile %s: %s",
				      profile->name, problem);
			free(problem);
			return -EINVAL;
		}
	}
	return 0;
}

const struct ticket_profile *
config_match_profile(const struct daemon_config *config,
		     const struct profile_subject *subject)
{
	for (size_t i = 0; i < config->n_profiles; i++)
		if (profile_matches(&config->profiles[i], subject))
			return &config->profiles[i];
	return &config->defaults;
}

/* Checks "https://host[:port]" and stores the host part for signing. */
/*
 * Checks a URL setting of the form "https://host[:port]", trims trailing
 * slashes in place, and stores the host part (the signed host header) in
 * *ret_host.
 */
static int config_check_url(const struct config_source *cfg,
			    const char *config_path, const char *name,
			    char *url, char **ret_host, char **ret_error)
{
	const char *prefix = "https://";
	const char *path = setting_path(cfg, name, config_path);
	int line = setting_line(cfg, name);
	const char *host, *p;
	size_t len;

	len = strlen(url);
	while (len > strlen(prefix) && url[len - 1] == '/')
		url[--len] = '\0';
	if (strncmp(url, prefix, strlen(prefix)) != 0)
		return config_error(ret_error, path, line, name,
				    "\"%s\" is not an https:// URL; use "
				    "\"https://host[:port]\"",
				    url);
	host = url + strlen(prefix);
	if (!*host)
		return config_error(ret_error, path, line, name,
				    "\"%s\" has no host", url);
	for (p = host; *p; p++) {
		if (!(*p == '.' || *p == '-' || *p == ':' || *p == '[' ||
		      *p == ']' || (*p >= '0' && *p <= '9') ||
		      (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
			return config_error(
				ret_error, path, line, name,
				"\"%s\" may contain only a host and a port, "
				"no path, query or user; use "
				"\"https://host[:port]\"",
				url);
	}
	if (!config_port_valid(host))
		return config_error(ret_error, path, line, name,
				    "\"%s\" has an invalid host or port; use "
				    "\"https://host[:port]\" with a port from 1 "
				    "to 65535",
				    url);
	*ret_host = strdup(host);
	return *ret_host ? 0 : -ENOMEM;
}

static int config_check_endpoint(struct daemon_config *config,
				 const struct config_source *cfg,
				 char **ret_error)
{
	int r = config_check_url(cfg, config->path, "endpoint",
				 config->endpoint, &config->endpoint_host,
				 ret_error);

	/* The STS settings get their defaults even without ram_role_arn,
	 * since a shared credentials file may name a role too. */
	if (r < 0)
		return r;
	if (!config->sts_endpoint) {
		config->sts_endpoint = strdup(CONFIG_STS_ENDPOINT_DEFAULT);
		if (!config->sts_endpoint)
			return -ENOMEM;
	}
	if (!config->role_session_name) {
		config->role_session_name = strdup("cloudapp-ticketd");
		if (!config->role_session_name)
			return -ENOMEM;
	}
	return config_check_url(cfg, config->path, "sts_endpoint",
				config->sts_endpoint, &config->sts_host,
				ret_error);
}

/* Returns true when uid may own a secret file: root, the daemon's own
 * uid or the service user. */
static bool config_secret_owner_trusted(uid_t uid)
{
	uid_t service_uid;

	if (uid == 0 || uid == geteuid())
		return true;
	return cloudapp_service_uid(&service_uid) == 0 && uid == service_uid;
}

int config_open_secret_file(const char *path, int *ret_fd, char **ret_error)
{
	struct stat st;
	int fd, r;

	*ret_fd = -1;
	*ret_error = NULL;
	/* O_NONBLOCK keeps a FIFO from blocking the open; it is rejected
	 * below as not a regular file. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY |
				O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		/* O_NOFOLLOW reports a symbolic link as ELOOP. */
		if (r == -ELOOP)
			r = asprintf(ret_error,
				     "%s is a symbolic link; name the file "
				     "itself",
				     path);
		else if (r == -EACCES && geteuid() != 0)
			r = asprintf(ret_error,
				     "cannot open %s: %s; the daemon runs as "
				     "uid %u, so make the file owned by that "
				     "user or pass the secret as a systemd "
				     "credential",
				     path, strerror(-r), (unsigned)geteuid());
		else
			r = asprintf(ret_error, "cannot open %s: %s", path,
				     strerror(-r));
		if (r < 0)
			*ret_error = NULL;
		return -EINVAL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		if (asprintf(ret_error, "%s is not a regular file", path) < 0)
			*ret_error = NULL;
		return -EINVAL;
	}
	/* Another owner could replace the secret, or read it by changing
	 * the mode back.  The service user may own it, so that root's
	 * --check-config accepts the file that the service reads. */
	if (!config_secret_owner_trusted(st.st_uid)) {
		close(fd);
		if (asprintf(ret_error,
			     "%s is owned by uid %u, not by root or %s; run "
			     "chown %s: %s",
			     path, (unsigned)st.st_uid, CLOUDAPP_SERVICE_USER,
			     CLOUDAPP_SERVICE_USER, path) < 0)
			*ret_error = NULL;
		return -EPERM;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		close(fd);
		if (asprintf(ret_error,
			     "%s is accessible by group or others (mode %04o); "
			     "run chmod 0600 %s",
			     path, (unsigned)(st.st_mode & 07777), path) < 0)
			*ret_error = NULL;
		return -EPERM;
	}
	*ret_fd = fd;
	return 0;
}

int config_read_secret_file(const char *path, char **ret_secret,
			    char **ret_error)
{
	/* Room for the secret, a CR LF line end, one byte more to detect a
	 * longer file, and the NUL. */
	char buf[CONFIG_STRING_MAX + 4];
	ssize_t n;
	int fd, r;

	*ret_secret = NULL;
	r = config_open_secret_file(path, &fd, ret_error);
	if (r < 0)
		return r;

	n = read(fd, buf, sizeof(buf) - 1);
	r = n < 0 ? -errno : 0;
	close(fd);
	if (n < 0 || n > CONFIG_STRING_MAX + 2) {
		cloudapp_wipe(buf, sizeof(buf));
		if (asprintf(ret_error, "%s: %s", path,
			     n < 0 ? strerror(-r) : "secret is too long") < 0)
			*ret_error = NULL;
		return n < 0 ? r : -EINVAL;
	}
	buf[n] = '\0';
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (n > 0 && buf[n - 1] == '\r')
		buf[--n] = '\0';
	if (n > CONFIG_STRING_MAX) {
		cloudapp_wipe(buf, sizeof(buf));
		if (asprintf(ret_error, "%s: secret is too long", path) < 0)
			*ret_error = NULL;
		return -EINVAL;
	}
	/* AccessKey secrets are letters and digits, so white space is
	 * most likely a copy-and-paste slip that would only show up later
	 * as SignatureDoesNotMatch. */
	if (n > 0 && strlen(buf) == (size_t)n &&
	    strpbrk(buf, " \t\r\v\f")) {
		cloudapp_wipe(buf, sizeof(buf));
		if (asprintf(ret_error,
			     "%s contains a space, tab or carriage return; "
			     "remove it, the secret has none",
			     path) < 0)
			*ret_error = NULL;
		return -EINVAL;
	}
	if (n == 0 || memchr(buf, '\n', (size_t)n) || strlen(buf) != (size_t)n) {
		cloudapp_wipe(buf, sizeof(buf));
		if (asprintf(ret_error,
			     "%s must hold the secret on one line and nothing "
			     "else",
			     path) < 0)
			*ret_error = NULL;
		return -EINVAL;
	}
	*ret_secret = strdup(buf);
	cloudapp_wipe(buf, sizeof(buf));
	return *ret_secret ? 0 : -ENOMEM;
}

/* Rejects settings the daemon does not know, in every file. */
static int config_check_unknown(const struct config_source *cfg,
				const char *path, char **ret_error)
{
	for (size_t layer = 0; layer < cfg->n; layer++) {
		config_setting_t *root = config_root_setting(&cfg->layers[layer]);

		for (int i = 0; i < config_setting_length(root); i++) {
			config_setting_t *s =
				config_setting_get_elem(root, (unsigned)i);
			const char *name = config_setting_name(s);
			bool known = false;

			for (size_t k = 0;
			     k < sizeof(config_known_settings) /
					 sizeof(config_known_settings[0]);
			     k++)
				known = known ||
					strcmp(name,
					       config_known_settings[k]) == 0;
			if (!known)
				return config_error(
					ret_error, setting_file(s, path),
					config_setting_source_line(s), name,
					"unknown setting; see cloudapp.conf(5)");
		}
	}
	return 0;
}

static int config_get_command(struct daemon_config *config,
			      const struct config_source *cfg, char **ret_error)
{
	config_setting_t *s = source_lookup(cfg, "client_command");
	const char *command_path = setting_file(s, config->path);
	char *detail = NULL;
	int n;

	if (!s)
		return 0;
	n = config_setting_length(s);
	if (config_setting_type(s) != CONFIG_TYPE_LIST &&
	    config_setting_type(s) != CONFIG_TYPE_ARRAY)
		return config_error(ret_error, command_path,
				    config_setting_source_line(s),
				    "client_command",
				    "must be a list of strings, e.g. "
				    "[\"/usr/bin/client\", \"%%{ticket_file}\"]");
	if (n <= 0)
		return config_error(ret_error, command_path,
				    config_setting_source_line(s),
				    "client_command", "must not be empty");
	config->client_command = calloc((size_t)n + 1, sizeof(char *));
	if (!config->client_command)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		config_setting_t *item = config_setting_get_elem(s, (unsigned)i);
		const char *value;

		if (config_setting_type(item) != CONFIG_TYPE_STRING)
			return config_error(ret_error, command_path,
					    config_setting_source_line(s),
					    "client_command",
					    "item %d is not a string", i + 1);
		value = config_setting_get_string(item);
		if (!cloudapp_utf8_valid(value, strlen(value)))
			return config_error(ret_error, command_path,
					    config_setting_source_line(s),
					    "client_command",
					    "item %d is not valid UTF-8", i + 1);
		config->client_command[i] = strdup(value);
		if (!config->client_command[i])
			return -ENOMEM;
		if (!cloudapp_placeholder_check(value, &detail)) {
			config_report(ret_error, command_path,
				      config_setting_source_line(s),
				      "client_command", "%s",
				      detail ? detail : "out of memory");
			free(detail);
			return -EINVAL;
		}
	}
	if (config->client_command[0][0] != '/')
		return config_error(ret_error, command_path,
				    config_setting_source_line(s),
				    "client_command",
				    "the program \"%s\" must be an absolute path",
				    config->client_command[0]);
	return 0;
}

/* Reads signature_version: "v3" (ACS3-HMAC-SHA256, the default) or "v2"
 * (HMAC-SHA1, which the gateway still accepts but Alibaba deprecates). */
static int config_get_signature_version(struct daemon_config *config,
					const struct config_source *cfg,
					char **ret_error)
{
	char *version = NULL;
	int r = config_get_string(cfg, config->path, "signature_version",
				  false, &version, ret_error);

	if (r < 0 || !version)
		return r;
	if (strcmp(version, "v2") == 0)
		config->signature_v2 = true;
	else if (strcmp(version, "v3") != 0)
		r = config_error(ret_error,
				 setting_path(cfg, "signature_version",
					      config->path),
				 setting_line(cfg, "signature_version"),
				 "signature_version",
				 "\"%s\" is not valid; use \"v3\" or \"v2\"",
				 version);
	free(version);
	return r;
}

static int config_get_strings(struct daemon_config *config,
			      const struct config_source *cfg, char **ret_error)
{
	const char *path = config->path;
	int r;

	r = config_get_string(cfg, path, "endpoint", true, &config->endpoint,
			      ret_error);
	if (r == 0)
		r = config_get_string(cfg, path, "ca_file", false,
				      &config->ca_file, ret_error);
	if (r == 0)
		r = config_get_string(cfg, path, "access_key_id", false,
				      &config->access_key_id, ret_error);
	if (r == 0)
		r = config_get_string(cfg, path, "access_key_secret_file",
				      false, &config->access_key_secret_file,
				      ret_error);
	if (r == 0)
		r = config_get_string(cfg, path, "security_token_file", false,
				      &config->security_token_file, ret_error);
	if (r == 0)
		r = config_get_signature_version(config, cfg, ret_error);
	if (r == 0)
		r = config_get_string(cfg, path, "ram_role_arn", false,
				      &config->ram_role_arn, ret_error);
	if (r == 0)
		r = config_get_string(cfg, path, "role_session_name", false,
				      &config->role_session_name, ret_error);
	if (r == 0)
		r = config_get_string(cfg, path, "sts_endpoint", false,
				      &config->sts_endpoint, ret_error);
	/* The key comes from elsewhere when neither is set; see
	 * credentials.h. */
	if (r == 0 && !config->access_key_id != !config->access_key_secret_file)
		r = config_error(ret_error, path,
				 setting_line(cfg, config->access_key_id ?
							   "access_key_id" :
							   "access_key_secret_file"),
				 config->access_key_id ? "access_key_secret_file" :
							 "access_key_id",
				 "missing; access_key_id and "
				 "access_key_secret_file go together");
	if (r == 0 && config->security_token_file && !config->access_key_id)
		r = config_error(ret_error, path,
				 setting_line(cfg, "security_token_file"),
				 "security_token_file",
				 "needs access_key_id and access_key_secret_file");
	if (r == 0)
		r = config_get_string(cfg, path, "product_type", false,
				      &config->product_type, ret_error);
	if (r == 0)
		r = config_get_string(cfg, path, "app_id", true,
				      &config->app_id, ret_error);
	if (r == 0)
		r = config_get_string(cfg, path, "end_user_id", false,
				      &config->end_user_id, ret_error);
	return r;
}

static int config_get_durations(struct daemon_config *config,
				const struct config_source *cfg, char **ret_error)
{
	const char *path = config->path;
	int r;

	config->poll_interval_ms = CONFIG_POLL_INTERVAL_DEFAULT_MS;
	config->ticket_timeout_ms = CONFIG_TICKET_TIMEOUT_DEFAULT_MS;
	config->request_timeout_ms = CONFIG_REQUEST_TIMEOUT_DEFAULT_MS;
	config->pickup_timeout_ms = CONFIG_PICKUP_TIMEOUT_DEFAULT_MS;
	config->poll_interval_max_ms = CONFIG_POLL_INTERVAL_MAX_DEFAULT_MS;
	config->idle_timeout_ms = CONFIG_IDLE_TIMEOUT_DEFAULT_MS;
	config->client_idle_timeout_ms = CONFIG_CLIENT_IDLE_TIMEOUT_DEFAULT_MS;

	r = config_get_seconds(cfg, path, "poll_interval",
			       CONFIG_POLL_INTERVAL_MIN_MS,
			       CONFIG_POLL_INTERVAL_MAX_MS,
			       &config->poll_interval_ms, ret_error);
	if (r == 0)
		r = config_get_seconds(cfg, path, "ticket_timeout", 1000,
				       CONFIG_TICKET_TIMEOUT_MAX_MS,
				       &config->ticket_timeout_ms, ret_error);
	if (r == 0)
		r = config_get_seconds(cfg, path, "request_timeout", 1000,
				       CONFIG_REQUEST_TIMEOUT_MAX_MS,
				       &config->request_timeout_ms, ret_error);
	if (r == 0)
		r = config_get_seconds(cfg, path, "pickup_timeout", 1000,
				       CONFIG_PICKUP_TIMEOUT_MAX_MS,
				       &config->pickup_timeout_ms, ret_error);
	if (r == 0)
		r = config_get_seconds(cfg, path, "poll_interval_max",
				       CONFIG_POLL_INTERVAL_MIN_MS,
				       CONFIG_POLL_INTERVAL_MAX_MS,
				       &config->poll_interval_max_ms, ret_error);
	if (r == 0)
		r = config_get_seconds(cfg, path, "idle_timeout", 0,
				       CONFIG_IDLE_TIMEOUT_MAX_MS,
				       &config->idle_timeout_ms, ret_error);
	config->role_duration_ms = CONFIG_ROLE_DURATION_DEFAULT_MS;
	if (r == 0)
		r = config_get_seconds(cfg, path, "role_duration",
				       CONFIG_ROLE_DURATION_MIN_MS,
				       CONFIG_ROLE_DURATION_MAX_MS,
				       &config->role_duration_ms, ret_error);
	if (r == 0)
		r = config_get_seconds(cfg, path, "client_idle_timeout", 1000,
				       CONFIG_CLIENT_IDLE_TIMEOUT_MAX_MS,
				       &config->client_idle_timeout_ms,
				       ret_error);
	/* An unset cap follows a long poll_interval up. */
	if (r == 0 && !source_lookup(cfg, "poll_interval_max") &&
	    config->poll_interval_max_ms < config->poll_interval_ms)
		config->poll_interval_max_ms = config->poll_interval_ms;
	if (r == 0 && config->poll_interval_max_ms < config->poll_interval_ms)
		r = config_error(ret_error, setting_path(cfg, "poll_interval_max", path),
				 setting_line(cfg, "poll_interval_max"),
				 "poll_interval_max",
				 "%g seconds is less than poll_interval (%g "
				 "seconds); raise it",
				 ms_to_seconds(config->poll_interval_max_ms),
				 ms_to_seconds(config->poll_interval_ms));
	return r;
}

/* Reads the poll growth factor and the limits. */
static int config_get_limits(struct daemon_config *config,
			     const struct config_source *cfg, char **ret_error)
{
	const char *path = config->path;
	int r;

	config->poll_backoff = CONFIG_POLL_BACKOFF_DEFAULT;
	config->max_tasks = CONFIG_MAX_TASKS_DEFAULT;
	config->max_requests_per_second = CONFIG_MAX_REQUESTS_PER_SECOND_DEFAULT;
	config->max_connections = CONFIG_MAX_CONNECTIONS_DEFAULT;
	config->max_connections_per_uid = CONFIG_MAX_CONNECTIONS_PER_UID_DEFAULT;
	config->max_requests_per_uid = CONFIG_MAX_REQUESTS_PER_UID_DEFAULT;

	r = config_get_number(cfg, path, "poll_backoff", 1.0, 4.0,
			      &config->poll_backoff, ret_error);
	if (r == 0)
		r = config_get_count(cfg, path, "max_tasks", 1, 100000,
				     &config->max_tasks, ret_error);
	if (r == 0)
		r = config_get_number(cfg, path, "max_requests_per_second", 0.1,
				      10000, &config->max_requests_per_second,
				      ret_error);
	if (r == 0)
		r = config_get_count(cfg, path, "max_connections", 1, 100000,
				     &config->max_connections, ret_error);
	if (r == 0)
		r = config_get_count(cfg, path, "max_connections_per_uid", 1,
				     100000, &config->max_connections_per_uid,
				     ret_error);
	if (r == 0)
		r = config_get_count(cfg, path, "max_requests_per_uid", 1,
				     100000, &config->max_requests_per_uid,
				     ret_error);
	return r;
}

/* The dashes around a PEM boundary line's keyword and label. */
#define CONFIG_PEM_DASHES "-----"
#define CONFIG_PEM_DASHES_LEN (sizeof(CONFIG_PEM_DASHES) - 1)

/*
 * Returns the label of a PEM boundary line such as "-----BEGIN
 * CERTIFICATE-----" whose keyword is BEGIN or END, or NULL when line is
 * not one.  The label points into line, which loses its closing dashes.
 */
static const char *config_pem_label(char *line, const char *keyword)
{
	size_t keyword_len = strlen(keyword);
	size_t label_start = CONFIG_PEM_DASHES_LEN + keyword_len + 1;
	size_t len;

	line[strcspn(line, "\r\n")] = '\0';
	len = strlen(line);
	if (len < label_start + 1 + CONFIG_PEM_DASHES_LEN ||
	    strncmp(line, CONFIG_PEM_DASHES, CONFIG_PEM_DASHES_LEN) != 0 ||
	    strncmp(line + CONFIG_PEM_DASHES_LEN, keyword, keyword_len) != 0 ||
	    line[label_start - 1] != ' ' ||
	    strcmp(line + len - CONFIG_PEM_DASHES_LEN, CONFIG_PEM_DASHES) != 0)
		return NULL;
	line[len - CONFIG_PEM_DASHES_LEN] = '\0';
	return line + label_start;
}

/* True for the PEM labels that OpenSSL reads as a certificate. */
static bool config_pem_label_is_certificate(const char *label)
{
	return strcmp(label, "CERTIFICATE") == 0 ||
	       strcmp(label, "X509 CERTIFICATE") == 0 ||
	       strcmp(label, "TRUSTED CERTIFICATE") == 0;
}

/*
 * Checks that the CA file contains a whole PEM certificate block, so that
 * a wrong file fails here and not at the first request.  The certificates
 * themselves are parsed when the first task loads the trusted CAs, and by
 * --check-config: parsing one here would load OpenSSL's configuration and
 * providers, about 2 MiB of resident memory, in a daemon that may never
 * send a request.
 */
static int config_check_ca_file(const char *path, char **ret_error)
{
	FILE *file = NULL;
	char *line = NULL, *begin_label = NULL;
	size_t size = 0;
	bool found = false;
	struct stat st;
	int fd, r = 0;

	*ret_error = NULL;
	/* O_NONBLOCK, because opening a FIFO would wait for a writer and
	 * stop the daemon at start or at a reload. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) < 0) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		if (asprintf(ret_error, "cannot read %s: %s", path,
			     strerror(-r)) < 0)
			*ret_error = NULL;
		return r;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		if (asprintf(ret_error,
			     "%s is not a regular file; give the path of a PEM "
			     "file of CA certificates",
			     path) < 0)
			*ret_error = NULL;
		return -EINVAL;
	}
	file = fdopen(fd, "r");
	if (!file) {
		r = -errno;
		close(fd);
		return r;
	}
	while (!found && getline(&line, &size, file) >= 0) {
		const char *label;

		if (!begin_label) {
			label = config_pem_label(line, "BEGIN");
			if (label && config_pem_label_is_certificate(label)) {
				begin_label = strdup(label);
				if (!begin_label)
					r = -ENOMEM;
			}
		} else {
			label = config_pem_label(line, "END");
			found = label && strcmp(label, begin_label) == 0;
		}
		if (r < 0)
			break;
	}
	if (r == 0 && ferror(file))
		r = -EIO;
	fclose(file);
	free(line);
	free(begin_label);
	if (r < 0) {
		if (asprintf(ret_error, "cannot read %s: %s", path,
			     strerror(-r)) < 0)
			*ret_error = NULL;
		return r;
	}
	if (!found) {
		if (asprintf(ret_error,
			     "%s contains no PEM certificate (\"-----BEGIN "
			     "CERTIFICATE-----\")",
			     path) < 0)
			*ret_error = NULL;
		return -EINVAL;
	}
	return 0;
}

/* Checks values that need more than a type: names, files, templates. */
static int config_check_values(struct daemon_config *config,
			       const struct config_source *cfg, char **ret_error)
{
	char *detail = NULL;
	int r;

	r = config_check_endpoint(config, cfg, ret_error);
	if (r < 0)
		return r;

	if (!config->product_type)
		config->product_type = strdup("CloudApp");
	if (!config->product_type)
		return -ENOMEM;
	if (strcmp(config->product_type, "CloudApp") != 0 &&
	    strcmp(config->product_type, "AndroidCloud") != 0)
		return config_error(ret_error, setting_path(cfg, "product_type", config->path),
				    setting_line(cfg, "product_type"),
				    "product_type",
				    "\"%s\" is not valid; use \"CloudApp\" or "
				    "\"AndroidCloud\"",
				    config->product_type);

	if (!config->end_user_id)
		config->end_user_id = strdup("%u");
	if (!config->end_user_id)
		return -ENOMEM;
	r = mapping_check_template(config->end_user_id, &detail);
	if (r < 0) {
		config_report(ret_error, setting_path(cfg, "end_user_id", config->path),
			      setting_line(cfg, "end_user_id"), "end_user_id",
			      "%s", detail ? detail : "invalid template");
		free(detail);
		return r;
	}

	if (config->ca_file) {
		r = config_check_ca_file(config->ca_file, &detail);
		if (r < 0) {
			config_report(ret_error, setting_path(cfg, "ca_file", config->path),
				      setting_line(cfg, "ca_file"), "ca_file",
				      "%s", detail ? detail : strerror(-r));
			free(detail);
			return r;
		}
	}

	/* systemd credentials win, so a secret file the configuration still
	 * names need not exist (it may have moved to /etc/credstore). */
	if (!config->access_key_secret_file || credentials_systemd_present())
		return 0;
	r = config_read_secret_file(config->access_key_secret_file,
				    &config->access_key_secret, &detail);
	if (r == 0 && config->security_token_file) {
		char *token = NULL;

		r = config_read_secret_file(config->security_token_file,
					    &token, &detail);
		cloudapp_free_secret(token);
		if (r < 0) {
			config_report(ret_error,
				      setting_path(cfg, "security_token_file",
						   config->path),
				      setting_line(cfg, "security_token_file"),
				      "security_token_file", "%s",
				      detail ? detail : strerror(-r));
			free(detail);
			return r;
		}
	}
	if (r < 0) {
		config_report(ret_error, setting_path(cfg, "access_key_secret_file", config->path),
			      setting_line(cfg, "access_key_secret_file"),
			      "access_key_secret_file", "%s",
			      detail ? detail : strerror(-r));
		free(detail);
		return r;
	}
	return 0;
}

/*
 * Checks that a configuration file is a regular file before libconfig
 * reads it: a FIFO or a device would make the read block or never end.
 */
static int config_check_file(const char *path, char **ret_error)
{
	struct stat st = { 0 };
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		if (asprintf(ret_error, "%s: cannot open: %s", path,
			     strerror(-r)) < 0)
			*ret_error = NULL;
		return r;
	}
	r = fstat(fd, &st) < 0 ? -errno : 0;
	close(fd);
	if (r == 0 && S_ISREG(st.st_mode))
		return 0;
	r = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
	if (asprintf(ret_error, "%s: %s", path,
		     r == -EISDIR ? "is a folder, not a file" :
				    "is not a regular file") < 0)
		*ret_error = NULL;
	return r;
}

/*
 * Checks the files that path pulls in with @include before libconfig
 * reads them, because its scanner blocks on a FIFO and exits the process
 * on a folder.  Each must be a regular file; includes nest up to
 * CONFIG_INCLUDE_DEPTH_MAX deep, as libconfig allows.
 */
static int config_check_includes(const char *path, const char *folder,
				 int depth, char **ret_error)
{
	char *text = NULL;
	size_t text_cap = 0;
	unsigned line = 0;
	FILE *file;
	int r = 0;

	if (depth > CONFIG_INCLUDE_DEPTH_MAX)
		return 0; /* libconfig reports the nesting itself */
	file = fopen(path, "re");
	if (!file)
		return 0; /* config_check_file() reported it */
	while (r == 0 && getline(&text, &text_cap, file) >= 0) {
		char *p = text + strspn(text, " \t"), *name, *end, *target;

		line++;
		if (strncmp(p, "@include", 8) != 0)
			continue;
		name = strchr(p + 8, '"');
		end = name ? strchr(name + 1, '"') : NULL;
		if (!end)
			continue; /* libconfig reports the syntax error */
		*end = '\0';
		name++;
		if (name[0] == '/')
			target = strdup(name);
		else if (asprintf(&target, "%s/%s", folder, name) < 0)
			target = NULL;
		if (!target) {
			r = -ENOMEM;
			break;
		}
		r = config_check_file(target, ret_error);
		if (r < 0) {
			char *detail = *ret_error;

			if (asprintf(ret_error, "%s:%u: @include: %s", path,
				     line, detail ? detail : strerror(-r)) < 0)
				*ret_error = NULL;
			free(detail);
		} else {
			r = config_check_includes(target, folder, depth + 1,
						  ret_error);
		}
		free(target);
	}
	free(text);
	fclose(file);
	return r;
}

/* Reads one file into layer, with @include paths relative to its folder. */
static int config_read_layer(config_t *layer, const char *path,
			     const char *folder, char **ret_error)
{
	int r = config_check_file(path, ret_error);
	const char *text;

	if (r == 0)
		r = config_check_includes(path, folder, 1, ret_error);
	if (r < 0)
		return r;
	config_set_include_dir(layer, folder);
	if (config_read_file(layer, path))
		return 0;
	if (config_error_type(layer) == CONFIG_ERR_FILE_IO) {
		r = -errno;
		if (asprintf(ret_error, "%s: cannot read: %s", path,
			     strerror(-r)) < 0)
			*ret_error = NULL;
		return r < 0 ? r : -EIO;
	}
	/* libconfig's text is often just "syntax error" itself. */
	text = config_error_text(layer);
	if (!text || strcmp(text, "syntax error") == 0)
		text = "";
	if (asprintf(ret_error,
		     "%s:%d: syntax error%s%s; write each setting as "
		     "NAME = VALUE followed by a semicolon, with strings in "
		     "double quotes",
		     config_error_file(layer) ? config_error_file(layer) : path,
		     config_error_line(layer), *text ? ": " : "", text) < 0)
		*ret_error = NULL;
	return -EINVAL;
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Lists the drop-in files: the names ending in ".conf" in the folder
 * conf.d next to the main file, sorted.  A missing folder has none.
 */
static int config_list_drop_ins(const char *folder, char ***ret_paths,
				size_t *ret_count, char **ret_error)
{
	char *dir_path = NULL, **paths = NULL, **grown;
	size_t count = 0;
	struct dirent *entry;
	DIR *dir;
	int r = 0;

	*ret_paths = NULL;
	*ret_count = 0;
	if (asprintf(&dir_path, "%s/conf.d", folder) < 0)
		return -ENOMEM;
	dir = opendir(dir_path);
	if (!dir) {
		r = errno == ENOENT ? 0 : -errno;
		if (r < 0 && asprintf(ret_error, "%s: cannot read: %s",
				      dir_path, strerror(-r)) < 0)
			*ret_error = NULL;
		free(dir_path);
		return r;
	}
	while ((entry = readdir(dir))) {
		size_t len = strlen(entry->d_name);

		if (entry->d_name[0] == '.' || len < 6 ||
		    strcmp(entry->d_name + len - 5, ".conf") != 0)
			continue;
		if (count == CONFIG_DROP_INS_MAX) {
			if (asprintf(ret_error,
				     "%s: more than %d drop-in files",
				     dir_path, CONFIG_DROP_INS_MAX) < 0)
				*ret_error = NULL;
			r = -E2BIG;
			break;
		}
		grown = realloc(paths, (count + 1) * sizeof(*paths));
		if (!grown) {
			r = -ENOMEM;
			break;
		}
		paths = grown;
		if (asprintf(&paths[count], "%s/%s", dir_path,
			     entry->d_name) < 0) {
			r = -ENOMEM;
			break;
		}
		count++;
	}
	closedir(dir);
	free(dir_path);
	if (r < 0) {
		for (size_t i = 0; i < count; i++)
			free(paths[i]);
		free(paths);
		return r;
	}
	if (count > 0)
		qsort(paths, count, sizeof(*paths), compare_names);
	*ret_paths = paths;
	*ret_count = count;
	return 0;
}

/* Reads the main file and its drop-ins into cfg. */
static int config_read_source(struct config_source *cfg, const char *path,
			      char **ret_error)
{
	char *copy = strdup(path), *folder, **drop_ins = NULL;
	size_t count = 0;
	int r;

	if (!copy)
		return -ENOMEM;
	folder = dirname(copy);
	config_init(&cfg->layers[0]);
	cfg->n = 1;
	r = config_read_layer(&cfg->layers[0], path, folder, ret_error);
	if (r == 0)
		r = config_list_drop_ins(folder, &drop_ins, &count, ret_error);
	for (size_t i = 0; i < count; i++) {
		if (r == 0) {
			config_init(&cfg->layers[cfg->n]);
			cfg->n++;
			r = config_read_layer(&cfg->layers[cfg->n - 1],
					      drop_ins[i], folder, ret_error);
		}
		free(drop_ins[i]);
	}
	free(drop_ins);
	free(copy);
	return r;
}

int config_load(const char *path, struct daemon_config **ret_config,
		char **ret_error)
{
	struct daemon_config *config;
	struct config_source cfg = { .n = 0 };
	int r;

	*ret_config = NULL;
	*ret_error = NULL;
	config = calloc(1, sizeof(*config));
	if (!config)
		return -ENOMEM;
	config->path = strdup(path);
	if (!config->path) {
		free(config);
		return -ENOMEM;
	}

	r = config_read_source(&cfg, path, ret_error);
	if (r < 0)
		goto out;

	r = config_check_unknown(&cfg, path, ret_error);
	if (r == 0)
		r = config_get_strings(config, &cfg, ret_error);
	if (r == 0)
		r = config_get_durations(config, &cfg, ret_error);
	if (r == 0)
		r = config_get_limits(config, &cfg, ret_error);
	if (r == 0)
		r = config_get_users(config, &cfg, ret_error);
	if (r == 0)
		r = config_get_command(config, &cfg, ret_error);
	if (r == 0)
		r = config_check_values(config, &cfg, ret_error);
	if (r == 0)
		r = config_get_defaults(config, &cfg, ret_error);
	if (r == 0)
		r = config_get_profiles(config, &cfg, ret_error);

out:
	for (size_t i = 0; i < cfg.n; i++)
		config_destroy(&cfg.layers[i]);
	if (r < 0) {
		if (!*ret_error && r == -ENOMEM)
			*ret_error = strdup("out of memory");
		config_free(config);
		return r;
	}
	config->refs = 1;
	*ret_config = config;
	return 0;
}

struct daemon_config *config_ref(struct daemon_config *config)
{
	config->refs++;
	return config;
}

void config_unref(struct daemon_config *config)
{
	if (config && --config->refs == 0)
		config_free(config);
}

void config_free(struct daemon_config *config)
{
	if (!config)
		return;
	free(config->path);
	free(config->endpoint);
	free(config->endpoint_host);
	free(config->ca_file);
	free(config->access_key_id);
	free(config->access_key_secret_file);
	free(config->security_token_file);
	free(config->ram_role_arn);
	free(config->role_session_name);
	free(config->sts_endpoint);
	free(config->sts_host);
	cloudapp_free_secret(config->access_key_secret);
	free(config->product_type);
	free(config->app_id);
	free(config->end_user_id);
	free(config->end_user_id_map);
	mapping_free_map(config->map, config->map_len);
	profile_clear(&config->defaults);
	for (size_t i = 0; i < config->n_profiles; i++)
		profile_clear(&config->profiles[i]);
	free(config->profiles);
	free_string_list(config->deny_users);
	free_string_list(config->deny_groups);
	if (config->client_command) {
		for (char **p = config->client_command; *p; p++)
			free(*p);
		free(config->client_command);
	}
	free(config);
}
