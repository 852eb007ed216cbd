/*
 * The daemon's configuration file (libconfig syntax), validated as a whole
 * before the daemon starts.
 */

#ifndef CLOUDAPP_CONF_H
#define CLOUDAPP_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mapping.h"
#include "profile.h"

/* Defaults and bounds, in milliseconds. */
#define CONFIG_POLL_INTERVAL_DEFAULT_MS 500
#define CONFIG_POLL_INTERVAL_MIN_MS 100
#define CONFIG_POLL_INTERVAL_MAX_MS 60000
#define CONFIG_TICKET_TIMEOUT_DEFAULT_MS 120000
#define CONFIG_TICKET_TIMEOUT_MAX_MS 3600000
#define CONFIG_REQUEST_TIMEOUT_DEFAULT_MS 10000
#define CONFIG_REQUEST_TIMEOUT_MAX_MS 120000
#define CONFIG_PICKUP_TIMEOUT_DEFAULT_MS 60000
#define CONFIG_PICKUP_TIMEOUT_MAX_MS 3600000
#define CONFIG_POLL_INTERVAL_MAX_DEFAULT_MS 5000
#define CONFIG_IDLE_TIMEOUT_DEFAULT_MS 300000
#define CONFIG_IDLE_TIMEOUT_MAX_MS 86400000
#define CONFIG_CLIENT_IDLE_TIMEOUT_DEFAULT_MS 60000
#define CONFIG_CLIENT_IDLE_TIMEOUT_MAX_MS 3600000

/* Defaults of the growth factor of the poll interval and of the limits.
 * NOTE: the API's own flow control for GetConnectionTicket is not
 * published; lower max_requests_per_second if the cloud returns
 * Throttling. */
#define CONFIG_POLL_BACKOFF_DEFAULT 1.5
#define CONFIG_MAX_TASKS_DEFAULT 200
#define CONFIG_MAX_REQUESTS_PER_SECOND_DEFAULT 20.0
#define CONFIG_MAX_CONNECTIONS_DEFAULT 4096
#define CONFIG_MAX_CONNECTIONS_PER_UID_DEFAULT 16
#define CONFIG_MAX_REQUESTS_PER_UID_DEFAULT 30

/* Users with a lower uid, root and system accounts, are not served. */
#define CONFIG_MIN_UID_DEFAULT 1000

/* STS AssumeRole: the public endpoint, and the lifetime of the
 * temporary credentials, within the 900 s to 12 h that STS accepts. */
#define CONFIG_STS_ENDPOINT_DEFAULT "https://sts.aliyuncs.com"
#define CONFIG_ROLE_DURATION_DEFAULT_MS 3600000
#define CONFIG_ROLE_DURATION_MIN_MS 900000
#define CONFIG_ROLE_DURATION_MAX_MS 43200000

/* Deepest nesting of @include, as in libconfig. */
#define CONFIG_INCLUDE_DEPTH_MAX 10

/* Most drop-in files read from conf.d next to the main file. */
#define CONFIG_DROP_INS_MAX 64

/* Longest accepted string setting and secret, in bytes. */
#define CONFIG_STRING_MAX 4096

struct daemon_config {
	unsigned refs; /* the daemon and each task started with it */
	char *path;
	char *endpoint;	     /* "https://host[:port]", no trailing slash */
	char *endpoint_host; /* "host[:port]", the signed host header */
	char *ca_file;	     /* NULL: the system store only */
	char *access_key_id;
	char *access_key_secret_file;
	char *access_key_secret; /* wiped on free */
	char *security_token_file; /* STS token, or NULL */
	bool signature_v2; /* signature_version = "v2" */
	/* With ram_role_arn the key only assumes the role, and the calls
	 * are signed with the temporary credentials from STS. */
	char *ram_role_arn;
	char *role_session_name;
	char *sts_endpoint; /* "https://host[:port]" */
	char *sts_host;
	int64_t role_duration_ms;
	char *product_type;
	char *app_id;
	char *end_user_id; /* the template */
	bool end_user_id_lowercase;
	bool end_user_id_strip_domain;
	char *end_user_id_map; /* path of the map file, or NULL */
	struct mapping_entry *map;
	size_t map_len;
	unsigned min_uid;
	char **deny_users;  /* NULL-terminated, or NULL */
	char **deny_groups; /* NULL-terminated, or NULL */
	int64_t poll_interval_ms;
	int64_t ticket_timeout_ms;
	int64_t request_timeout_ms;
	int64_t pickup_timeout_ms;
	int64_t poll_interval_max_ms; /* the cap of the growing interval */
	double poll_backoff;	      /* each wait is the last one times this */
	int64_t idle_timeout_ms;      /* 0: never exit when idle */
	int64_t client_idle_timeout_ms; /* closes connections left unused */
	unsigned max_tasks;	      /* cloud tasks in flight */
	double max_requests_per_second;
	unsigned max_connections;
	unsigned max_connections_per_uid; /* not for root */
	unsigned max_requests_per_uid;	  /* per minute, not for root */
	char **client_command; /* NULL-terminated, or NULL */
	/* The top-level request settings, and the profiles that override
	 * them, each complete and checked. */
	struct ticket_profile defaults;
	struct ticket_profile *profiles;
	size_t n_profiles;
};

/*
 * Reads and validates the configuration at path.  On failure returns a
 * negative errno and a malloc'd message in *ret_error of the form
 * "FILE:LINE: setting NAME: problem".
 */
int config_load(const char *path, struct daemon_config **ret_config,
		char **ret_error);

void config_free(struct daemon_config *config);

/* Takes a reference; config_unref() frees the configuration with the
 * last one, so a reload leaves running tasks their configuration. */
struct daemon_config *config_ref(struct daemon_config *config);
void config_unref(struct daemon_config *config);

/* Returns the first profile that matches subject, or the defaults. */
const struct ticket_profile *
config_match_profile(const struct daemon_config *config,
		     const struct profile_subject *subject);

/* Fills rules with the mapping settings of config. */
void config_mapping_rules(const struct daemon_config *config,
			  struct mapping_rules *rules);

/*
 * Reads a secret from a file that only its owner may read: a regular file,
 * no group or other permission bits, at most CONFIG_STRING_MAX bytes, one
 * trailing newline dropped.  On failure *ret_error contains the reason.
 */
int config_read_secret_file(const char *path, char **ret_secret,
			    char **ret_error);

/*
 * Opens a file that contains secrets, after the checks of
 * config_read_secret_file(): a regular file, not a symbolic link, owned
 * by root or the daemon's user, no access for group or others.  Returns 0
 * and the descriptor, or a negative errno with *ret_error.
 */
int config_open_secret_file(const char *path, int *ret_fd, char **ret_error);

#endif
