/*
 * pam_cloudapp.so: an auth and session module that has cloudapp-ticketd
 * start fetching the cloud app ticket of the user who logs in, so the
 * ticket is ready or nearly ready when the desktop session runs
 * "cloudappctl launch".
 *
 * Each call to the daemon takes at most "timeout" seconds.  When anything
 * goes wrong the module logs one line and returns PAM_IGNORE, so the login
 * goes on; only with fail=closed does open_session fail.  The auth hook
 * never decides authentication.  The module runs inside every login
 * process, so it starts no threads, keeps no state between logins and
 * leaves no descriptor open.
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <json-c/json.h>
#include <security/pam_ext.h>
#include <security/pam_modules.h>
#include <security/pam_modutil.h>

#include "messages.h"
#include "protocol.h"
#include "util.h"

#define PAMCLOUD_TIMEOUT_DEFAULT_MS 2000
#define PAMCLOUD_TIMEOUT_MAX_MS 60000

/* Folder of the per-user ticket folders of the ticket_file option; not
 * /run/user/UID, which pam_systemd may not have mounted yet. */
#define PAMCLOUD_TICKET_DIR "/run/cloudapp/users"
#define PAMCLOUD_TICKET_NAME "ticket"
#define PAMCLOUD_TICKET_ENV "CLOUDAPP_TICKET_FILE"

/* PAM data name that marks a task started at authentication. */
#define PAMCLOUD_STARTED_DATA "pam_cloudapp_started"

/* Services that never start a cloud call unless services= names them:
 * they are not logins to a desktop. */
static const char *const pamcloud_default_excluded[] = {
	"cron", "sshd", "su", "su-l", "sudo", "sudo-i", "systemd-user",
};

struct pamcloud_options {
	const char *socket_path;
	int timeout_ms; /* bounds connect, send and receive together */
	bool debug;
	bool quiet;	  /* no messages to the user */
	bool wait;	  /* open_session waits until the ticket is ready */
	bool fail_closed; /* fail the session when no ticket can be had */
	bool ignore_root;
	long min_uid;	      /* -1: no limit */
	const char *profile;  /* a profile of cloudapp.conf to use, or NULL */
	const char *app_id;   /* an AppId instead of the profile's, or NULL */
	bool ticket_file;     /* write the ticket to a file for the session */
	const char *ticket_dir; /* where, PAMCLOUD_TICKET_DIR by default */
	const char *services; /* comma-separated, or NULL for the default */
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

static void apply_flag(pam_handle_t *pamh, const char *name,
		       const char *value, bool *flag)
{
	if (value) {
		warn_bad_value(pamh, name, value, "no value");
		return;
	}
	*flag = true;
}

static void apply_quiet(pam_handle_t *pamh, struct pamcloud_options *options,
			const char *value)
{
	apply_flag(pamh, "quiet", value, &options->quiet);
}

static void apply_wait(pam_handle_t *pamh, struct pamcloud_options *options,
		       const char *value)
{
	apply_flag(pamh, "wait", value, &options->wait);
}

static void apply_ignore_root(pam_handle_t *pamh,
			      struct pamcloud_options *options,
			      const char *value)
{
	apply_flag(pamh, "ignore_root", value, &options->ignore_root);
}

static void apply_fail(pam_handle_t *pamh, struct pamcloud_options *options,
		       const char *value)
{
	if (value && strcmp(value, "open") == 0)
		options->fail_closed = false;
	else if (value && strcmp(value, "closed") == 0)
		options->fail_closed = true;
	else
		warn_bad_value(pamh, "fail", value, "open or closed");
}

static void apply_min_uid(pam_handle_t *pamh, struct pamcloud_options *options,
			  const char *value)
{
	char *end = NULL;
	long uid = value ? strtol(value, &end, 10) : -1;

	if (!value || !*value || *end || uid < 0) {
		warn_bad_value(pamh, "min_uid", value, "a uid");
		return;
	}
	options->min_uid = uid;
}

static void apply_app_id(pam_handle_t *pamh, struct pamcloud_options *options,
			 const char *value)
{
	if (!value || !*value) {
		warn_bad_value(pamh, "app_id", value, "an AppId");
		return;
	}
	options->app_id = value;
}

static void apply_profile(pam_handle_t *pamh, struct pamcloud_options *options,
			  const char *value)
{
	if (!value || !*value) {
		warn_bad_value(pamh, "profile", value, "a profile name");
		return;
	}
	options->profile = value;
}

static void apply_ticket_file(pam_handle_t *pamh,
			      struct pamcloud_options *options,
			      const char *value)
{
	apply_flag(pamh, "ticket_file", value, &options->ticket_file);
}

static void apply_ticket_dir(pam_handle_t *pamh,
			     struct pamcloud_options *options,
			     const char *value)
{
	if (!value || value[0] != '/') {
		warn_bad_value(pamh, "ticket_dir", value, "an absolute path");
		return;
	}
	options->ticket_dir = value;
}

static void apply_services(pam_handle_t *pamh,
			   struct pamcloud_options *options, const char *value)
{
	if (!value || !*value) {
		warn_bad_value(pamh, "services", value,
			       "service names separated by commas");
		return;
	}
	options->services = value;
}

/* Sorted by name for bsearch(); the man page lists the options likewise. */
static const struct option_entry option_table[] = {
	{ "app_id", apply_app_id },
	{ "debug", apply_debug },	    { "fail", apply_fail },
	{ "ignore_root", apply_ignore_root }, { "min_uid", apply_min_uid },
	{ "profile", apply_profile },	    { "quiet", apply_quiet },
	{ "services", apply_services },
	{ "socket", apply_socket },	    { "ticket_dir", apply_ticket_dir },
	{ "ticket_file", apply_ticket_file }, { "timeout", apply_timeout },
	{ "wait", apply_wait },
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
	memset(options, 0, sizeof(*options));
	options->socket_path = CLOUDAPP_SOCKET_PATH;
	options->timeout_ms = PAMCLOUD_TIMEOUT_DEFAULT_MS;
	options->min_uid = -1;
	options->ticket_dir = PAMCLOUD_TICKET_DIR;

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

/* True when name is in the comma-separated list. */
static bool list_has(const char *list, const char *name)
{
	size_t len = strlen(name);

	for (const char *p = list; p && *p;) {
		const char *comma = strchr(p, ',');
		size_t item = comma ? (size_t)(comma - p) : strlen(p);

		if (item == len && strncmp(p, name, len) == 0)
			return true;
		p = comma ? comma + 1 : NULL;
	}
	return false;
}

/*
 * Decides whether this login should start a ticket task: the service
 * filter, then ignore_root and min_uid.  Logs the reason with debug.
 */
static bool applies(pam_handle_t *pamh, const struct pamcloud_options *o,
		    const char *user, const char *service)
{
	const struct passwd *pw;
	bool excluded = false;

	if (o->services) {
		excluded = !service || !list_has(o->services, service);
	} else if (service) {
		for (size_t i = 0; i < sizeof(pamcloud_default_excluded) /
					       sizeof(pamcloud_default_excluded[0]);
		     i++)
			excluded = excluded ||
				   strcmp(service, pamcloud_default_excluded[i]) ==
					   0;
	}
	if (excluded) {
		if (o->debug)
			pam_syslog(pamh, LOG_DEBUG,
				   "service %s does not start cloud apps",
				   service ? service : "(none)");
		return false;
	}
	if (!o->ignore_root && o->min_uid < 0)
		return true;
	pw = pam_modutil_getpwnam(pamh, user);
	if (!pw)
		return true; /* the daemon reports unknown users */
	if ((o->ignore_root && pw->pw_uid == 0) ||
	    (o->min_uid >= 0 && (long)pw->pw_uid < o->min_uid)) {
		if (o->debug)
			pam_syslog(pamh, LOG_DEBUG,
				   "user %s (uid %lu) is skipped by "
				   "ignore_root or min_uid",
				   user, (unsigned long)pw->pw_uid);
		return false;
	}
	return true;
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
		   "no ticket for user %s via %s: %s: %s%s%s%s%s%s%s", user,
		   options->socket_path, error,
		   message ? message : "no message", code ? ", Code " : "",
		   code ? code : "", request_id ? ", RequestId " : "",
		   request_id ? request_id : "", task_id ? ", TaskId " : "",
		   task_id ? task_id : "");
}

/* The outcome when no ticket can be had: the login goes on, or with
 * fail=closed the session fails and the user sees why. */
static int fail_with(pam_handle_t *pamh, const struct pamcloud_options *o,
		     const char *message)
{
	if (!o->fail_closed)
		return PAM_IGNORE;
	if (!o->quiet)
		pam_error(pamh, "%s", message);
	return PAM_SESSION_ERR;
}

/*
 * Handles one reply to method, StartTicket or DropTicket.  Returns 1 for a
 * progress reply, or the PAM status for the final one.
 */
static int handle_reply(pam_handle_t *pamh, const struct pamcloud_options *o,
			const char *method, const char *user,
			json_object *reply, uint64_t started_usec)
{
	json_object *parameters;
	const char *error, *state;
	bool continues;

	if (cloudapp_reply_parse(reply, &error, &parameters, &continues) < 0)
		goto invalid;
	if (error) {
		log_error_reply(pamh, o, user, error, parameters);
		return fail_with(pamh, o,
				 cloudapp_human_message(
					 error, cloudapp_json_string(parameters,
								     "code")));
	}
	/* DropTicket replies with "dropped" and no task state. */
	if (strcmp(method, CLOUDAPP_METHOD_DROP_TICKET) == 0)
		return PAM_SUCCESS;
	state = cloudapp_json_string(parameters, "state");
	if (!state)
		goto invalid;
	if (continues) {
		if (!o->quiet)
			pam_info(pamh, "Starting your cloud app... %llu s",
				 (unsigned long long)((cloudapp_now_usec() -
						       started_usec) /
						      1000000u));
		return 1;
	}
	if (strcmp(state, "failed") == 0) {
		pam_syslog(pamh, LOG_WARNING,
			   "ticket task for user %s via %s is in state failed "
			   "(EndUserId %s, TaskId %s)",
			   user, o->socket_path,
			   member_or_dash(parameters, "end_user_id"),
			   member_or_dash(parameters, "task_id"));
		return fail_with(pamh, o,
				 "Your cloud app could not be started. Please "
				 "contact your administrator.");
	}
	if (o->wait && !o->quiet && strcmp(state, "ready") == 0)
		pam_info(pamh, "Your cloud app is ready.");
	if (o->debug)
		pam_syslog(pamh, LOG_DEBUG,
			   "ticket task for user %s: EndUserId %s, state %s, "
			   "TaskId %s",
			   user, member_or_dash(parameters, "end_user_id"),
			   state, member_or_dash(parameters, "task_id"));
	return PAM_SUCCESS;

invalid:
	pam_syslog(pamh, LOG_ERR,
		   "no ticket for user %s via %s: invalid reply from "
		   "cloudapp-ticketd",
		   user, o->socket_path);
	return fail_with(pamh, o, CLOUDAPP_MESSAGE_UNREACHABLE);
}

/* Logs that the daemon closed the connection mid-call and the call was
 * sent again, which happens when it is stopped or restarted. */
static void log_reconnects(pam_handle_t *pamh,
			   const struct pamcloud_options *o,
			   const struct cloudapp_client *client,
			   const char *method, const char *user)
{
	if (client->reconnects > 0)
		pam_syslog(pamh, LOG_WARNING,
			   "cloudapp-ticketd at %s closed the connection "
			   "during %s for user %s; tried it once more",
			   o->socket_path, method, user);
}

/*
 * Sends method for user and handles the replies, all within
 * options->timeout_ms.  With wait, StartTicket replies when the ticket is
 * ready, showing progress on the way.
 */
static int call_daemon(pam_handle_t *pamh, const struct pamcloud_options *o,
		       const char *method, const char *user,
		       const char *service, bool wait)
{
	uint64_t started_usec = cloudapp_now_usec();
	struct cloudapp_client client;
	json_object *parameters, *reply = NULL;
	int r, status = PAM_SUCCESS;

	if (o->debug)
		pam_syslog(pamh, LOG_DEBUG, "sending %s for user %s to %s%s",
			   method, user, o->socket_path,
			   wait ? ", waiting for the ticket" : "");
	r = cloudapp_client_connect(&client, o->socket_path, o->timeout_ms);
	if (r < 0 && client.untrusted) {
		pam_syslog(pamh, LOG_ERR, "not using %s: %s", o->socket_path,
			   client.untrusted);
		return fail_with(pamh, o, CLOUDAPP_MESSAGE_UNREACHABLE);
	}
	if (r < 0)
		goto unreachable;
	parameters = json_object_new_object();
	if (!parameters) {
		cloudapp_client_close(&client);
		return PAM_IGNORE;
	}
	json_object_object_add(parameters, "user",
			       json_object_new_string(user));
	if (service)
		json_object_object_add(parameters, "service",
				       json_object_new_string(service));
	if (wait)
		json_object_object_add(parameters, "wait",
				       json_object_new_boolean(true));
	if (o->profile && strcmp(method, CLOUDAPP_METHOD_START_TICKET) == 0)
		json_object_object_add(parameters, "profile",
				       json_object_new_string(o->profile));
	if (o->app_id && strcmp(method, CLOUDAPP_METHOD_START_TICKET) == 0)
		json_object_object_add(parameters, "app_id",
				       json_object_new_string(o->app_id));
	r = cloudapp_client_send(&client, method, parameters, wait);
	while (r >= 0) {
		r = cloudapp_client_receive(&client, &reply);
		if (r < 0)
			break;
		status = handle_reply(pamh, o, method, user, reply,
				      started_usec);
		json_object_put(reply);
		if (status != 1)
			break;
	}
	log_reconnects(pamh, o, &client, method, user);
	cloudapp_client_close(&client);
	if (r >= 0)
		return status;

unreachable:
	if (r == -EPERM && client.untrusted) {
		pam_syslog(pamh, LOG_ERR, "not using %s: %s", o->socket_path,
			   client.untrusted);
		return fail_with(pamh, o, CLOUDAPP_MESSAGE_UNREACHABLE);
	}
	/* %m rather than strerror(), which is not thread-safe, and the login
	 * process may have threads.  The daemon being down or slow is
	 * expected on some hosts, so this is a warning. */
	errno = -r;
	pam_syslog(pamh,
		   r == -EBADMSG || r == -EMSGSIZE ? LOG_ERR : LOG_WARNING,
		   "%s for user %s via %s failed: %m", method, user,
		   o->socket_path);
	return fail_with(pamh, o,
			 r == -ETIMEDOUT ?
				 "The cloud app did not start in time. "
				 "Please try again." :
				 CLOUDAPP_MESSAGE_UNREACHABLE);
}

/* Reads the options and the user; returns false when nothing is to do. */
static bool prepare(pam_handle_t *pamh, int argc, const char **argv,
		    struct pamcloud_options *options, const char **ret_user,
		    const char **ret_service)
{
	parse_options(pamh, argc, argv, options);
	if (!options->socket_path)
		return false;
	/* PAM_USER is set by now; pam_get_user() could prompt, which these
	 * hooks must not do. */
	*ret_user = get_string_item(pamh, PAM_USER);
	if (!*ret_user) {
		pam_syslog(pamh, LOG_WARNING, "PAM_USER is not set, ignoring");
		return false;
	}
	/* The name is not logged: it may contain control characters. */
	if (!cloudapp_user_name_valid(*ret_user)) {
		pam_syslog(pamh, LOG_WARNING,
			   "user name is not valid for cloudapp-ticketd "
			   "(empty, too long, or contains '/' or a control "
			   "character), ignoring");
		return false;
	}
	*ret_service = get_string_item(pamh, PAM_SERVICE);
	return applies(pamh, options, *ret_user, *ret_service);
}

/*
 * Opens the user's ticket folder DIR/UID, creating it 0700 and owned by
 * the user.  An existing one must be a real folder with exactly that
 * owner and mode, so that a user cannot point root's write elsewhere.
 * Returns a descriptor, or -1 after logging why.
 */
static int open_ticket_folder(pam_handle_t *pamh, const char *dir,
			      const struct passwd *pw)
{
	char path[PATH_MAX];
	struct stat st;
	int fd;

	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		goto fail_dir;
	snprintf(path, sizeof(path), "%s/%lu", dir, (unsigned long)pw->pw_uid);
	if (mkdir(path, 0700) == 0 &&
	    chown(path, pw->pw_uid, pw->pw_gid) < 0)
		goto fail;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		goto fail;
	if (fstat(fd, &st) < 0 || st.st_uid != pw->pw_uid ||
	    (st.st_mode & 07777) != 0700) {
		close(fd);
		pam_syslog(pamh, LOG_ERR,
			   "%s is not a folder of uid %lu with mode 0700, "
			   "not writing the ticket there",
			   path, (unsigned long)pw->pw_uid);
		return -1;
	}
	return fd;

fail_dir:
	snprintf(path, sizeof(path), "%s", dir);
fail:
	pam_syslog(pamh, LOG_ERR, "cannot create the ticket folder %s: %m",
		   path);
	return -1;
}

/*
 * Fetches the ticket, writes it to DIR/UID/ticket (0600, owned by the
 * user) and exports its path as CLOUDAPP_TICKET_FILE, for clients that
 * read a file.  Returns PAM_SUCCESS, or the fail policy's status.
 */
static int write_ticket_file(pam_handle_t *pamh,
			     const struct pamcloud_options *o,
			     const char *user)
{
	const struct passwd *pw = pam_modutil_getpwnam(pamh, user);
	struct cloudapp_client client;
	json_object *parameters, *reply = NULL, *result;
	const char *error, *ticket;
	char path[PATH_MAX], env[PATH_MAX + 32];
	bool continues;
	int dir_fd, fd, r;

	if (!pw)
		return fail_with(pamh, o, CLOUDAPP_MESSAGE_UNREACHABLE);
	r = cloudapp_client_connect(&client, o->socket_path, o->timeout_ms);
	parameters = json_object_new_object();
	json_object_object_add(parameters, "user",
			       json_object_new_string(user));
	if (r == 0)
		r = cloudapp_client_send(&client, CLOUDAPP_METHOD_GET_TICKET,
					 parameters, false);
	else
		json_object_put(parameters);
	if (r == 0)
		r = cloudapp_client_receive(&client, &reply);
	log_reconnects(pamh, o, &client, CLOUDAPP_METHOD_GET_TICKET, user);
	cloudapp_client_close(&client);
	if (r < 0 ||
	    cloudapp_reply_parse(reply, &error, &result, &continues) < 0 ||
	    error || !(ticket = cloudapp_json_string(result, "ticket"))) {
		pam_syslog(pamh, LOG_ERR, "cannot get the ticket of user %s "
					  "for ticket_file",
			   user);
		json_object_put(reply);
		return fail_with(pamh, o,
				 "Your cloud app could not be started. Please "
				 "contact your administrator.");
	}

	dir_fd = open_ticket_folder(pamh, o->ticket_dir, pw);
	fd = dir_fd < 0 ? -1 :
			  openat(dir_fd, PAMCLOUD_TICKET_NAME,
				 O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
					 O_CLOEXEC,
				 0600);
	r = fd < 0 ? -1 : 0;
	if (r == 0 && (fchown(fd, pw->pw_uid, pw->pw_gid) < 0 ||
		       fchmod(fd, 0600) < 0 ||
		       write(fd, ticket, strlen(ticket)) !=
			       (ssize_t)strlen(ticket)))
		r = -1;
	cloudapp_wipe((char *)ticket, strlen(ticket));
	json_object_put(reply);
	if (fd >= 0)
		close(fd);
	if (dir_fd >= 0)
		close(dir_fd);
	snprintf(path, sizeof(path), "%s/%lu/%s", o->ticket_dir,
		 (unsigned long)pw->pw_uid, PAMCLOUD_TICKET_NAME);
	if (r < 0) {
		pam_syslog(pamh, LOG_ERR, "cannot write the ticket file %s: %m",
			   path);
		return fail_with(pamh, o,
				 "Your cloud app could not be started. Please "
				 "contact your administrator.");
	}
	snprintf(env, sizeof(env), "%s=%s", PAMCLOUD_TICKET_ENV, path);
	pam_putenv(pamh, env);
	return PAM_SUCCESS;
}

int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc,
			const char **argv)
{
	struct pamcloud_options options;
	const char *user, *service;
	const void *started = NULL;
	int status;

	if (!prepare(pamh, argc, argv, &options, &user, &service))
		return PAM_IGNORE;
	/* A ticket file needs the ticket, so it waits for it. */
	if (options.ticket_file)
		options.wait = true;
	/* Started at authentication: the daemon already works on it. */
	if (!options.wait &&
	    pam_get_data(pamh, PAMCLOUD_STARTED_DATA, &started) ==
		    PAM_SUCCESS &&
	    started)
		return PAM_SUCCESS;
	status = call_daemon(pamh, &options, CLOUDAPP_METHOD_START_TICKET,
			     user, service, options.wait);
	if (status != PAM_SUCCESS || !options.ticket_file)
		return status;
	return write_ticket_file(pamh, &options, user);
}

/* Removes the ticket file and its folder at logout. */
static void remove_ticket_file(pam_handle_t *pamh,
			       const struct pamcloud_options *o,
			       const char *user)
{
	const struct passwd *pw = pam_modutil_getpwnam(pamh, user);
	char path[PATH_MAX];
	int dir_fd;

	if (!pw)
		return;
	snprintf(path, sizeof(path), "%s/%lu", o->ticket_dir,
		 (unsigned long)pw->pw_uid);
	dir_fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dir_fd < 0)
		return;
	unlinkat(dir_fd, PAMCLOUD_TICKET_NAME, 0);
	close(dir_fd);
	rmdir(path);
}

/* At logout, drops a ticket that no session picked up. */
int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc,
			 const char **argv)
{
	struct pamcloud_options options;
	const char *user, *service;

	if (!prepare(pamh, argc, argv, &options, &user, &service))
		return PAM_IGNORE;
	options.fail_closed = false;
	options.quiet = true;
	call_daemon(pamh, &options, CLOUDAPP_METHOD_DROP_TICKET, user, service,
		    false);
	if (options.ticket_file)
		remove_ticket_file(pamh, &options, user);
	return PAM_IGNORE;
}

/*
 * In the auth stack after the password module, starts the ticket task as
 * soon as the password was accepted, so the cloud app starts while the
 * desktop does.  It never decides authentication.
 */
int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc,
			const char **argv)
{
	struct pamcloud_options options;
	const char *user, *service;

	if (!prepare(pamh, argc, argv, &options, &user, &service))
		return PAM_IGNORE;
	options.fail_closed = false;
	options.quiet = true;
	if (call_daemon(pamh, &options, CLOUDAPP_METHOD_START_TICKET, user,
			service, false) == PAM_SUCCESS)
		pam_set_data(pamh, PAMCLOUD_STARTED_DATA, (void *)1, NULL);
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
