/*
 * pam_cloudapp.so: a session module that asks cloudapp-ticketd to start
 * fetching the cloud app ticket of the user who logs in, so the ticket is
 * ready or nearly ready when the desktop session runs "cloudappctl launch".
 *
 * The module never fails a login.  It sends one StartTicket call, waits at
 * most "timeout" seconds for the reply, and returns PAM_IGNORE with one log
 * line when anything goes wrong.  It runs inside every login process, so it
 * starts no threads, keeps no state between calls and leaves no descriptor
 * open.
 */

#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <json-c/json.h>
#include <security/pam_ext.h>
#include <security/pam_modules.h>

#include "protocol.h"
#include "util.h"

#define PAMCLOUD_TIMEOUT_DEFAULT_MS 2000
#define PAMCLOUD_TIMEOUT_MAX_MS 60000

struct pamcloud_options {
	const char *socket_path;
	int timeout_ms; /* bounds connect, send and receive together */
	bool debug;
};

/*
 * Applies one option.  value is the text after '=', or NULL when the
 * argument has no '='.
 */
typedef void option_handler(pam_handle_t *pamh,
			    struct pamcloud_options *options,
			    const char *value);

struct option_entry {
	const char *name;
	option_handler *apply;
};

static void warn_bad_value(pam_handle_t *pamh, const char *name,
			   const char *value, const char *expected)
{
	pam_syslog(pamh, LOG_WARNING,
		   "invalid value \"%s\" for option %s (expected %s), "
		   "using the default",
		   value ? value : "", name, expected);
}

static void apply_debug(pam_handle_t *pamh, struct pamcloud_options *options,
			const char *value)
{
	if (value) {
		warn_bad_value(pamh, "debug", value, "no value");
		return;
	}
	options->debug = true;
}

/* A bad socket= turns the module off for this call rather than falling
 * back to the default socket, which may belong to another daemon. */
static void apply_socket(pam_handle_t *pamh, struct pamcloud_options *options,
			 const char *value)
{
	if (!value || value[0] != '/') {
		pam_syslog(pamh, LOG_ERR,
			   "invalid value \"%s\" for option socket (expected "
			   "an absolute path); not starting a ticket task",
			   value ? value : "");
		options->socket_path = NULL;
		return;
	}
	options->socket_path = value;
}

static void apply_timeout(pam_handle_t *pamh, struct pamcloud_options *options,
			  const char *value)
{
	int64_t ms;

	/* A timeout of 0 would mean no deadline in cloudapp_client_connect,
	 * which could hang the login, so it is rejected too. */
	if (cloudapp_parse_seconds(value, PAMCLOUD_TIMEOUT_MAX_MS, &ms) < 0 ||
	    ms == 0) {
		warn_bad_value(pamh, "timeout", value,
			       "seconds from 0.001 to 60");
		return;
	}
	options->timeout_ms = (int)ms;
}

/* Sorted by name for bsearch(); the man page lists the options likewise. */
static const struct option_entry option_table[] = {
	{ "debug", apply_debug },
	{ "socket", apply_socket },
	{ "timeout", apply_timeout },
};

struct option_key {
	const char *name;
	size_t len;
};

static int option_compare(const void *key_ptr, const void *entry_ptr)
{
	const struct option_key *key = key_ptr;
	const struct option_entry *entry = entry_ptr;
	int r = strncmp(key->name, entry->name, key->len);

	if (r != 0)
		return r;
	/* key is a prefix of entry->name: equal only when lengths match. */
	return entry->name[key->len] == '\0' ? 0 : -1;
}

static void parse_options(pam_handle_t *pamh, int argc, const char **argv,
			  struct pamcloud_options *options)
{
	options->socket_path = CLOUDAPP_SOCKET_PATH;
	options->timeout_ms = PAMCLOUD_TIMEOUT_DEFAULT_MS;
	options->debug = false;

	for (int i = 0; i < argc; i++) {
		const char *equals = strchr(argv[i], '=');
		struct option_key key = {
			.name = argv[i],
			.len = equals ? (size_t)(equals - argv[i])
				      : strlen(argv[i]),
		};
		const struct option_entry *entry;

		entry = bsearch(&key, option_table,
				sizeof(option_table) / sizeof(option_table[0]),
				sizeof(option_table[0]), option_compare);
		if (!entry) {
			pam_syslog(pamh, LOG_WARNING,
				   "unknown option \"%s\", ignoring", argv[i]);
			continue;
		}
		entry->apply(pamh, options, equals ? equals + 1 : NULL);
	}
}

/* Returns a PAM item as a string, or NULL when it is unset. */
static const char *get_string_item(pam_handle_t *pamh, int type)
{
	const void *item = NULL;

	if (pam_get_item(pamh, type, &item) != PAM_SUCCESS)
		return NULL;
	return item;
}

/*
 * Sends StartTicket and reads its reply within options->timeout_ms.
 * Returns 0 and the reply in *ret_reply, or a negative errno.
 */
static int request_start_ticket(const struct pamcloud_options *options,
				const char *user, const char *service,
				json_object **ret_reply)
{
	struct cloudapp_client client;
	json_object *parameters;
	int r;

	*ret_reply = NULL;
	r = cloudapp_client_connect(&client, options->socket_path,
				    options->timeout_ms);
	if (r < 0)
		return r;

	parameters = json_object_new_object();
	if (!parameters) {
		r = -ENOMEM;
		goto out;
	}
	json_object_object_add(parameters, "user",
			       json_object_new_string(user));
	if (service)
		json_object_object_add(parameters, "service",
				       json_object_new_string(service));

	r = cloudapp_client_send(&client, CLOUDAPP_METHOD_START_TICKET,
				 parameters, false);
	if (r < 0)
		goto out;
	r = cloudapp_client_receive(&client, ret_reply);

out:
	cloudapp_client_close(&client);
	return r;
}

/* Returns the string member key of parameters, or "-" when it is absent. */
static const char *member_or_dash(json_object *parameters, const char *key)
{
	const char *value = cloudapp_json_string(parameters, key);

	return value ? value : "-";
}

/* Logs an error reply in one line: its name, message and ids. */
static void log_error_reply(pam_handle_t *pamh,
			    const struct pamcloud_options *options,
			    const char *user, const char *error,
			    json_object *parameters)
{
	const char *message = cloudapp_json_string(parameters, "message");
	const char *code = cloudapp_json_string(parameters, "code");
	const char *request_id = cloudapp_json_string(parameters, "request_id");
	const char *task_id = cloudapp_json_string(parameters, "task_id");

	pam_syslog(pamh, LOG_ERR,
		   "cannot start the ticket task for user %s via %s: "
		   "%s: %s%s%s%s%s%s%s",
		   user, options->socket_path, error,
		   message ? message : "no message", code ? ", Code " : "",
		   code ? code : "", request_id ? ", RequestId " : "",
		   request_id ? request_id : "", task_id ? ", TaskId " : "",
		   task_id ? task_id : "");
}

/*
 * Checks the StartTicket reply and logs the outcome.  Returns PAM_SUCCESS
 * when the daemon accepted the task, PAM_IGNORE otherwise.
 */
static int handle_reply(pam_handle_t *pamh,
			const struct pamcloud_options *options,
			const char *user, json_object *reply)
{
	json_object *parameters;
	const char *error, *state;
	bool continues;

	if (cloudapp_reply_parse(reply, &error, &parameters, &continues) < 0)
		goto invalid;
	if (error) {
		log_error_reply(pamh, options, user, error, parameters);
		return PAM_IGNORE;
	}
	state = cloudapp_json_string(parameters, "state");
	if (!state)
		goto invalid;

	if (strcmp(state, "failed") == 0) {
		pam_syslog(pamh, LOG_WARNING,
			   "ticket task for user %s via %s is in state failed "
			   "(EndUserId %s, TaskId %s)",
			   user, options->socket_path,
			   member_or_dash(parameters, "end_user_id"),
			   member_or_dash(parameters, "task_id"));
		return PAM_IGNORE;
	}

	if (options->debug)
		pam_syslog(pamh, LOG_DEBUG,
			   "started the ticket task for user %s: EndUserId "
			   "%s, state %s, TaskId %s",
			   user, member_or_dash(parameters, "end_user_id"),
			   state, member_or_dash(parameters, "task_id"));
	return PAM_SUCCESS;

invalid:
	pam_syslog(pamh, LOG_ERR,
		   "cannot start the ticket task for user %s via %s: "
		   "invalid reply from cloudapp-ticketd",
		   user, options->socket_path);
	return PAM_IGNORE;
}

int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc,
			const char **argv)
{
	struct pamcloud_options options;
	const char *user, *service;
	json_object *reply = NULL;
	int r, status;

	parse_options(pamh, argc, argv, &options);
	if (!options.socket_path)
		return PAM_IGNORE;

	/* PAM_USER is set by the time a session opens; pam_get_user() could
	 * prompt, which a session module must not do. */
	user = get_string_item(pamh, PAM_USER);
	if (!user) {
		pam_syslog(pamh, LOG_WARNING, "PAM_USER is not set, ignoring");
		return PAM_IGNORE;
	}
	/* The name is not logged: it may contain control characters. */
	if (!cloudapp_user_name_valid(user)) {
		pam_syslog(pamh, LOG_WARNING,
			   "user name is not valid for cloudapp-ticketd "
			   "(empty, too long, or contains '/' or a control "
			   "character), ignoring");
		return PAM_IGNORE;
	}
	service = get_string_item(pamh, PAM_SERVICE);

	if (options.debug)
		pam_syslog(pamh, LOG_DEBUG,
			   "sending StartTicket for user %s to %s, timeout "
			   "%d ms",
			   user, options.socket_path, options.timeout_ms);

	r = request_start_ticket(&options, user, service, &reply);
	if (r < 0) {
		/* The daemon being down or slow is expected on some hosts,
		 * so these are warnings; broken replies are errors. */
		int priority =
			r == -EBADMSG || r == -EMSGSIZE ? LOG_ERR : LOG_WARNING;

		/* %m rather than strerror(), which is not thread-safe, and
		 * the login process may have threads. */
		errno = -r;
		pam_syslog(pamh, priority,
			   "cannot start the ticket task for user %s via %s: "
			   "%m",
			   user, options.socket_path);
		return PAM_IGNORE;
	}

	status = handle_reply(pamh, &options, user, reply);
	json_object_put(reply);
	return status;
}

int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc,
			 const char **argv)
{
	return PAM_IGNORE;
}

int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc,
			const char **argv)
{
	return PAM_IGNORE;
}

int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	return PAM_IGNORE;
}

int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	return PAM_IGNORE;
}

int pam_sm_chauthtok(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	return PAM_IGNORE;
}
