/*
 * cloudappctl: the command line client of cloudapp-ticketd.  "ticket"
 * prints the caller's cloud app ticket, "launch" runs the cloud app client
 * with it (see launch.c) and "status" shows the daemon's ticket tasks.
 * Every wait for the daemon is bounded by --timeout.
 */

#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "launch.h"
#include "messages.h"
#include "protocol.h"
#include "util.h"

/* The ticket task polls the cloud for up to about two minutes. */
#define CTL_TIMEOUT_DEFAULT_MS (150 * 1000)
#define CTL_TIMEOUT_MAX_MS (24 * 3600 * 1000)

struct ctl_options {
	const char *socket_path;
	int timeout_ms;
	bool quiet;
};

struct ctl_command {
	const char *name;
	int (*run)(const struct ctl_options *options, int argc, char **argv);
};

void ctl_log(const char *format, ...)
{
	va_list ap;

	fputs("cloudappctl: ", stderr);
	va_start(ap, format);
	vfprintf(stderr, format, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int ctl_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

const char *ctl_json_text(json_object *object, const char *key)
{
	json_object *value;

	if (!object || !json_object_object_get_ex(object, key, &value))
		return NULL;
	/* json-c prints integers in decimal, including those above
	 * INT64_MAX, which it stores as uint64_t. */
	if (json_object_is_type(value, json_type_string) ||
	    json_object_is_type(value, json_type_int))
		return json_object_get_string(value);
	return NULL;
}

static void ctl_print_usage(FILE *out)
{
	fprintf(out,
		"Usage: cloudappctl [OPTION...] COMMAND [ARG...]\n"
		"\n"
		"Gets cloud app tickets from cloudapp-ticketd.\n"
		"\n"
		"Commands:\n"
		"  ticket [--json] [--user NAME]\n"
		"      print the ticket of NAME (default: you); with --json,\n"
		"      the daemon's whole reply with every response field\n"
		"  launch [--user NAME] [--on-exit POLICY]\n"
		"         [--max-relaunches N] [-- COMMAND [ARG...]]\n"
		"      write the ticket to a file in $XDG_RUNTIME_DIR, run\n"
		"      COMMAND (default: client_command of cloudapp.conf)\n"
		"      on it, then remove the file; when the client ends,\n"
		"      POLICY none (default), relaunch (with a new ticket,\n"
		"      at most N times, default 5) or end-session\n"
		"  status [--json]\n"
		"      show the daemon's ticket tasks\n"
		"  resolve [--json] [NAME]\n"
		"      show the EndUserId and the request parameters a\n"
		"      ticket for NAME (default: you) would use, without a\n"
		"      cloud call\n"
		"  check-config [FILE]\n"
		"      check a configuration file (default: %s)\n"
		"\n"
		"Options:\n"
		"  -s, --socket PATH\n"
		"      socket of cloudapp-ticketd (default: %s)\n"
		"  -t, --timeout SECONDS\n"
		"      maximum wait for the daemon, 0.001 to 86400,\n"
		"      decimals allowed (default: %d)\n"
		"  -q, --quiet    print no progress messages\n"
		"  -h, --help     print this help and exit\n"
		"  -V, --version  print the version and exit\n"
		"\n"
		"Only root may give --user with another user's name.\n"
		"\n"
		"Placeholders in launch arguments: %%{ticket_file} is the\n"
		"path of the ticket file; %%{user}, %%{end_user_id},\n"
		"%%{task_id}, %%{task_status}, %%{request_id},\n"
		"%%{app_instance_id}, %%{app_instance_group_id},\n"
		"%%{app_instance_persistent_id}, %%{os_type},\n"
		"%%{biz_region_id}, %%{tenant_id} and %%{avatar_id} are\n"
		"fields of the daemon's reply (empty when absent); %%%% is a\n"
		"literal %%.  Without %%{ticket_file}, the path is appended\n"
		"as the last argument.\n"
		"\n"
		"Exit status: 0 on success, 1 on an error from the daemon or\n"
		"the cloud, 2 on invalid usage, 3 when the daemon is not\n"
		"reachable.  launch exits with the client's status: 127 when\n"
		"it cannot be run, 128 + N when signal N killed it.\n",
		CLOUDAPP_CONFIG_FILE, CLOUDAPP_SOCKET_PATH,
		CTL_TIMEOUT_DEFAULT_MS / 1000);
}

/* Reports an option error from getopt_long() run with a leading ':'. */
static int ctl_option_error(int c, char **argv)
{
	const char *option = argv[optind - 1];
	char short_option[3] = { '-', (char)optopt, '\0' };

	/* For an unknown short option inside a group such as "-qx",
	 * argv[optind - 1] is the whole group; optopt names the letter. */
	if (optopt && strncmp(option, "--", 2) != 0)
		option = short_option;
	if (c == ':')
		ctl_log("option %s requires an argument", option);
	else
		ctl_log("unknown option %s; see cloudappctl --help", option);
	return CTL_EXIT_USAGE;
}

/*
 * Parses the options of a command that takes only --user, -h and, when
 * allow_command is set, a command after them.  Returns -1 to go on, or an
 * exit status.
 */
/* Action of "launch" when the client exits. */
enum ctl_on_exit {
	CTL_ON_EXIT_NONE,
	CTL_ON_EXIT_RELAUNCH,	 /* start it again with a new ticket */
	CTL_ON_EXIT_END_SESSION, /* loginctl terminate-session */
};

struct ctl_launch_options {
	enum ctl_on_exit on_exit;
	unsigned max_relaunches;
};

/* Default maximum of relaunches, and the maximum wait between two. */
#define CTL_MAX_RELAUNCHES_DEFAULT 5
#define CTL_RELAUNCH_DELAY_MAX_SEC 30

static int ctl_parse_launch_option(int c, const char *value,
				   struct ctl_launch_options *launch)
{
	char *end;
	unsigned long n;

	if (c == 'e') {
		if (strcmp(value, "none") == 0)
			launch->on_exit = CTL_ON_EXIT_NONE;
		else if (strcmp(value, "relaunch") == 0)
			launch->on_exit = CTL_ON_EXIT_RELAUNCH;
		else if (strcmp(value, "end-session") == 0)
			launch->on_exit = CTL_ON_EXIT_END_SESSION;
		else {
			ctl_log("invalid --on-exit \"%s\": expected none, "
				"relaunch or end-session",
				value);
			return CTL_EXIT_USAGE;
		}
		return -1;
	}
	n = strtoul(value, &end, 10);
	if (!*value || *end || n > 1000) {
		ctl_log("invalid --max-relaunches \"%s\": expected 0 to 1000",
			value);
		return CTL_EXIT_USAGE;
	}
	launch->max_relaunches = (unsigned)n;
	return -1;
}

static int ctl_parse_user_option(int argc, char **argv, bool allow_command,
				 const char **ret_user, bool *ret_json,
				 struct ctl_launch_options *launch)
{
	static const struct option long_options[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "json", no_argument, NULL, 'j' },
		{ "max-relaunches", required_argument, NULL, 'm' },
		{ "on-exit", required_argument, NULL, 'e' },
		{ "user", required_argument, NULL, 'u' },
		{ NULL, 0, NULL, 0 },
	};
	int c, status;

	*ret_user = NULL;
	if (ret_json)
		*ret_json = false;
	optind = 0;
	while ((c = getopt_long(argc, argv, "+:hu:", long_options, NULL)) !=
	       -1) {
		switch (c) {
		case 'h':
			ctl_print_usage(stdout);
			return CTL_EXIT_OK;
		case 'u':
			*ret_user = optarg;
			break;
		case 'e':
		case 'm':
			if (!launch) {
				ctl_log("--on-exit and --max-relaunches are "
					"options of launch only");
				return CTL_EXIT_USAGE;
			}
			status = ctl_parse_launch_option(c, optarg, launch);
			if (status >= 0)
				return status;
			break;
		case 'j':
			/* Only "ticket" takes --json. */
			if (ret_json) {
				*ret_json = true;
				break;
			}
			ctl_log("unknown option --json for %s", argv[0]);
			return CTL_EXIT_USAGE;
		default:
			return ctl_option_error(c, argv);
		}
	}
	if (!allow_command && optind < argc) {
		ctl_log("unexpected argument \"%s\" for %s", argv[optind],
			argv[0]);
		return CTL_EXIT_USAGE;
	}
	return -1;
}

/*
 * Picks the user whose ticket to get: the caller, or requested when the
 * caller is root or requested is the caller's own name.  Returns
 * CTL_EXIT_OK and a copy of the name, or an exit status after printing
 * the error.
 */
static int ctl_resolve_user(const char *requested, char **ret_user)
{
	struct passwd *pw;

	if (requested && !cloudapp_user_name_valid(requested)) {
		ctl_log("invalid user name \"%s\": it must have 1 to %d "
			"bytes, no '/' and no control characters",
			requested, CLOUDAPP_USER_NAME_MAX);
		return CTL_EXIT_USAGE;
	}

	if (!requested || getuid() != 0) {
		errno = 0;
		pw = getpwuid(getuid());
		if (!pw) {
			ctl_log("cannot find the user name of uid %u: %s",
				(unsigned)getuid(),
				errno ? strerror(errno) : "no such user");
			return CTL_EXIT_FAILURE;
		}
		if (requested && strcmp(requested, pw->pw_name) != 0) {
			ctl_log("only root may get the ticket of another user "
				"(%s); run cloudappctl as %s",
				requested, requested);
			return CTL_EXIT_FAILURE;
		}
		if (!requested)
			requested = pw->pw_name;
	}

	*ret_user = strdup(requested);
	if (!*ret_user) {
		ctl_log("out of memory");
		return CTL_EXIT_FAILURE;
	}
	return CTL_EXIT_OK;
}

/*
 * Connects to the daemon and sends a call; takes ownership of parameters.
 * Returns CTL_EXIT_OK or an exit status after printing the error.
 */
static int ctl_call(struct cloudapp_client *client,
		    const struct ctl_options *options, const char *method,
		    json_object *parameters, bool more)
{
	int r;

	r = cloudapp_client_connect(client, options->socket_path,
				    options->timeout_ms);
	if (r < 0 && client->untrusted) {
		json_object_put(parameters);
		ctl_log("not using %s: %s; cloudappctl trusts only a socket "
			"served by root or %s in a folder only root can write",
			options->socket_path, client->untrusted,
			CLOUDAPP_SERVICE_USER);
		return CTL_EXIT_UNREACHABLE;
	}
	if (r < 0) {
		json_object_put(parameters);
		ctl_log("cannot reach cloudapp-ticketd at %s: %s; is "
			"cloudapp-ticketd.socket running?",
			options->socket_path, strerror(-r));
		return CTL_EXIT_UNREACHABLE;
	}

	r = cloudapp_client_send(client, method, parameters, more);
	if (r == -ECONNRESET) {
		ctl_log("cloudapp-ticketd at %s closed the connection; see "
			"its log with journalctl -u cloudapp-ticketd",
			options->socket_path);
		return CTL_EXIT_UNREACHABLE;
	}
	if (r < 0) {
		ctl_log("cannot send a request to cloudapp-ticketd at %s: %s",
			options->socket_path, strerror(-r));
		return CTL_EXIT_FAILURE;
	}
	return CTL_EXIT_OK;
}

/* Prints an error reply: its message, then the cloud's Code and RequestId
 * and the TaskId when the reply has them, for a support request. */
static void ctl_print_error_reply(const char *what, const char *error,
				  json_object *parameters, bool for_login)
{
	static const struct {
		const char *key, *label;
	} ids[] = {
		{ "code", "Code" },
		{ "request_id", "RequestId" },
		{ "task_id", "TaskId" },
	};
	const char *message = cloudapp_json_string(parameters, "message");
	char details[512] = "";
	size_t used = 0;

	if (!message)
		message = error;
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		const char *value = ctl_json_text(parameters, ids[i].key);
		int n;

		if (!value || used >= sizeof(details))
			continue;
		n = snprintf(details + used, sizeof(details) - used, "%s%s %s",
			     used ? ", " : " (", ids[i].label, value);
		if (n > 0)
			used += (size_t)n;
	}
	if (used > 0 && used < sizeof(details) - 1)
		strcat(details, ")");
	ctl_log("%s: %s%s", what, message, details);
	/* The short message for the person at the screen, on its own
	 * line, as the greeter shows it.  Status and resolve are for the
	 * administrator, who has the line above. */
	if (for_login)
		ctl_log("%s", cloudapp_human_message(
				      error, ctl_json_text(parameters, "code")));
}

/*
 * Waits for the next reply.  Returns CTL_EXIT_OK with the reply in
 * *ret_reply and its parameters, or an exit status after printing the
 * error, which names what failed with what.  for_login adds the short
 * message for the person at the screen to an error reply.
 */
static int ctl_receive(struct cloudapp_client *client,
		       const struct ctl_options *options, const char *what,
		       bool for_login, json_object **ret_reply,
		       json_object **ret_parameters, bool *ret_continues)
{
	json_object *reply;
	const char *error;
	int r;

	r = cloudapp_client_receive(client, &reply);
	if (r == -EPERM && client->untrusted) {
		ctl_log("%s: not using %s after the daemon closed the "
			"connection: %s",
			what, options->socket_path, client->untrusted);
		return CTL_EXIT_UNREACHABLE;
	}
	if (r == -ECONNRESET) {
		ctl_log("%s: cloudapp-ticketd at %s closed the connection "
			"before the final reply; see its log with journalctl "
			"-u cloudapp-ticketd",
			what, options->socket_path);
		return CTL_EXIT_UNREACHABLE;
	}
	if (r == -ETIMEDOUT) {
		ctl_log("%s: timed out after %.3g s waiting for "
			"cloudapp-ticketd; give a longer --timeout",
			what, options->timeout_ms / 1000.0);
		return CTL_EXIT_FAILURE;
	}
	/* The daemon is gone and nothing listens on its socket any more,
	 * as when a daemon started by hand stops: report it as unreachable. */
	if (client->reconnects > 0 &&
	    (r == -ENOENT || r == -ECONNREFUSED || r == -EPIPE)) {
		ctl_log("%s: cloudapp-ticketd at %s closed the connection "
			"before the final reply, and connecting again failed: "
			"%s; is cloudapp-ticketd.socket running?",
			what, options->socket_path, strerror(-r));
		client->reconnects = 0; /* reported here, not again at the end */
		return CTL_EXIT_UNREACHABLE;
	}
	if (r < 0) {
		ctl_log("%s: invalid reply from cloudapp-ticketd: %s", what,
			strerror(-r));
		return CTL_EXIT_FAILURE;
	}

	if (cloudapp_reply_parse(reply, &error, ret_parameters, ret_continues) <
	    0) {
		ctl_log("%s: invalid reply from cloudapp-ticketd: not a "
			"reply object",
			what);
		json_object_put(reply);
		return CTL_EXIT_FAILURE;
	}
	if (error) {
		ctl_print_error_reply(what, error, *ret_parameters, for_login);
		json_object_put(reply);
		return CTL_EXIT_FAILURE;
	}
	*ret_reply = reply;
	return CTL_EXIT_OK;
}

/* Describes the "waiting" member of a progress reply. */
static const char *ctl_wait_text(const char *waiting)
{
	if (strcmp(waiting, "task_limit") == 0)
		return "queued behind other logins (max_tasks)";
	if (strcmp(waiting, "rate_limit") == 0)
		return "queued for the API request rate "
		       "(max_requests_per_second)";
	if (strcmp(waiting, "retry") == 0)
		return "retrying after an error";
	if (strcmp(waiting, "connection") == 0)
		return "queued for a connection to the cloud endpoint";
	if (strcmp(waiting, "role") == 0)
		return "waiting for the RAM role's temporary credentials";
	return waiting;
}

/* Prints a GetTicket progress reply on stderr. */
static void ctl_print_progress(const char *user, json_object *parameters)
{
	const char *end_user_id = ctl_json_text(parameters, "end_user_id");
	const char *task_id = ctl_json_text(parameters, "task_id");
	const char *polls = ctl_json_text(parameters, "polls");
	const char *waiting = ctl_json_text(parameters, "waiting");
	const char *position = ctl_json_text(parameters, "queue_position");
	json_object *elapsed;
	const char *separator = " (";
	char *line = NULL;
	size_t line_len;
	FILE *out;

	/* Built in memory first so the line reaches stderr in one write. */
	out = open_memstream(&line, &line_len);
	if (!out)
		return;
	fprintf(out, "cloudappctl: waiting for the cloud app of %s", user);
	if (end_user_id) {
		fprintf(out, "%sEndUserId %s", separator, end_user_id);
		separator = ", ";
	}
	if (task_id) {
		fprintf(out, "%sTaskId %s", separator, task_id);
		separator = ", ";
	}
	if (polls) {
		fprintf(out, "%spoll %s", separator, polls);
		separator = ", ";
	}
	if (json_object_object_get_ex(parameters, "elapsed_ms", &elapsed) &&
	    json_object_is_type(elapsed, json_type_int)) {
		fprintf(out, "%s%.1f s", separator,
			(double)json_object_get_int64(elapsed) / 1000.0);
		separator = ", ";
	}
	if (waiting) {
		fprintf(out, "%s%s", separator, ctl_wait_text(waiting));
		if (position)
			fprintf(out, ", position %s", position);
		separator = ", ";
	}
	fputs(separator[0] == ',' ? ")\n" : "\n", out);
	if (fclose(out) == 0)
		fputs(line, stderr);
	free(line);
}

/* Checks that a final GetTicket reply carries a ticket that is safe to
 * print on one line.  Returns true when it does. */
static bool ctl_ticket_valid(json_object *parameters)
{
	const char *state = cloudapp_json_string(parameters, "state");
	json_object *ticket;
	const char *text;
	int len;

	if (state && strcmp(state, "ready") != 0)
		return false;
	if (!json_object_object_get_ex(parameters, "ticket", &ticket) ||
	    !json_object_is_type(ticket, json_type_string))
		return false;
	text = json_object_get_string(ticket);
	len = json_object_get_string_len(ticket);
	if (len <= 0)
		return false;
	/* Base64 is printable ASCII; this also rejects an embedded NUL. */
	for (int i = 0; i < len; i++) {
		if (text[i] <= ' ' || text[i] > '~')
			return false;
	}
	return true;
}

/*
 * Gets the ticket of user with GetTicket, printing progress unless quiet.
 * Returns CTL_EXIT_OK and the final reply (the caller puts it, and wipes
 * the ticket in its parameters first), or an exit status after printing
 * the error.
 */
static int ctl_get_ticket(const struct ctl_options *options, const char *user,
			  json_object **ret_reply, json_object **ret_parameters)
{
	char what[CLOUDAPP_USER_NAME_MAX + 64];
	struct cloudapp_client client;
	json_object *call_parameters;
	int status;

	snprintf(what, sizeof(what), "cannot get the ticket of %s", user);
	call_parameters = json_object_new_object();
	if (!call_parameters) {
		ctl_log("out of memory");
		return CTL_EXIT_FAILURE;
	}
	json_object_object_add(call_parameters, "user",
			       json_object_new_string(user));

	status = ctl_call(&client, options, CLOUDAPP_METHOD_GET_TICKET,
			  call_parameters, true);
	if (status != CTL_EXIT_OK)
		goto out;

	for (;;) {
		json_object *reply, *parameters;
		bool continues;

		status = ctl_receive(&client, options, what, true, &reply,
				     &parameters, &continues);
		if (status != CTL_EXIT_OK)
			break;
		if (!continues) {
			if (!ctl_ticket_valid(parameters)) {
				ctl_log("%s: invalid reply from "
					"cloudapp-ticketd: no valid ticket",
					what);
				launch_wipe_ticket(parameters);
				json_object_put(reply);
				status = CTL_EXIT_FAILURE;
				break;
			}
			*ret_reply = reply;
			*ret_parameters = parameters;
			break;
		}
		if (!options->quiet)
			ctl_print_progress(user, parameters);
		json_object_put(reply);
	}

out:
	if (client.reconnects > 0)
		ctl_log("cloudapp-ticketd at %s closed the connection before "
			"the final reply (stopped or restarted?); tried the "
			"request once more",
			options->socket_path);
	cloudapp_client_close(&client);
	return status;
}

static int ctl_run_ticket(const struct ctl_options *options, int argc,
			  char **argv)
{
	json_object *reply, *parameters;
	const char *requested, *ticket;
	bool json;
	char *user;
	int status, r;

	status = ctl_parse_user_option(argc, argv, false, &requested, &json,
				       NULL);
	if (status >= 0)
		return status;
	status = ctl_resolve_user(requested, &user);
	if (status != CTL_EXIT_OK)
		return status;

	status = ctl_get_ticket(options, user, &reply, &parameters);
	if (status != CTL_EXIT_OK)
		goto out;

	/* write() rather than stdio, so no copy of the ticket stays in a
	 * stdio buffer. */
	if (json) {
		size_t len = 0;
		char *text = (char *)json_object_to_json_string_length(
			parameters,
			JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE,
			&len);

		r = text ? ctl_write_all(STDOUT_FILENO, text, len) : -ENOMEM;
		/* json-c keeps the text, ticket included, in the object. */
		if (text)
			cloudapp_wipe(text, len);
	} else {
		ticket = cloudapp_json_string(parameters, "ticket");
		r = ctl_write_all(STDOUT_FILENO, ticket, strlen(ticket));
	}
	launch_wipe_ticket(parameters);
	json_object_put(reply);
	if (r == 0)
		r = ctl_write_all(STDOUT_FILENO, "\n", 1);
	if (r < 0) {
		ctl_log("cannot write the ticket to stdout: %s", strerror(-r));
		status = CTL_EXIT_FAILURE;
	}

out:
	free(user);
	return status;
}

/*
 * Ends the login session after the client ended, for kiosks that should
 * show nothing but the app: runs "loginctl terminate-session" for
 * $XDG_SESSION_ID.
 */
static void ctl_end_session(int client_status)
{
	const char *session = getenv("XDG_SESSION_ID");
	pid_t pid;
	int wait_status;

	if (!session || !*session) {
		ctl_log("XDG_SESSION_ID is not set, so the session cannot be "
			"ended; is this a logind session?");
		return;
	}
	ctl_log("the client ended with status %d; ending session %s",
		client_status, session);
	pid = fork();
	if (pid == 0) {
		execlp("loginctl", "loginctl", "terminate-session", session,
		       (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &wait_status, 0) < 0 ||
	    !WIFEXITED(wait_status) || WEXITSTATUS(wait_status) != 0)
		ctl_log("loginctl terminate-session %s failed", session);
}

static int ctl_run_launch(const struct ctl_options *options, int argc,
			  char **argv)
{
	struct ctl_launch_options launch = {
		.on_exit = CTL_ON_EXIT_NONE,
		.max_relaunches = CTL_MAX_RELAUNCHES_DEFAULT,
	};
	json_object *reply, *parameters;
	struct launch_plan plan;
	const char *requested;
	char *user;
	int status;

	status = ctl_parse_user_option(argc, argv, true, &requested, NULL,
				       &launch);
	if (status >= 0)
		return status;
	status = ctl_resolve_user(requested, &user);
	if (status != CTL_EXIT_OK)
		return status;

	/* Check the runtime directory and the command before the daemon
	 * hands out the ticket, which it does only once. */
	status = launch_plan_init(&plan, argv + optind, argc - optind,
				  options->quiet);
	if (status != CTL_EXIT_OK)
		goto out;

	for (unsigned attempt = 0;; attempt++) {
		unsigned delay;

		status = ctl_get_ticket(options, user, &reply, &parameters);
		if (status == CTL_EXIT_OK) {
			status = launch_run(&plan, parameters, user);
			json_object_put(reply);
		}
		if (launch.on_exit == CTL_ON_EXIT_END_SESSION) {
			ctl_end_session(status);
			break;
		}
		/* A client stopped by a signal passed on from cloudappctl
		 * was stopped on purpose. */
		if (launch.on_exit != CTL_ON_EXIT_RELAUNCH ||
		    launch_stopped_by_request())
			break;
		if (attempt >= launch.max_relaunches) {
			ctl_log("the client ended %u times; not starting it "
				"again (--max-relaunches)",
				attempt + 1);
			break;
		}
		delay = attempt < 5 ? 1u << attempt : CTL_RELAUNCH_DELAY_MAX_SEC;
		if (delay > CTL_RELAUNCH_DELAY_MAX_SEC)
			delay = CTL_RELAUNCH_DELAY_MAX_SEC;
		ctl_log("the client ended with status %d; starting it again "
			"with a new ticket in %u s",
			status, delay);
		sleep(delay);
	}

out:
	launch_plan_done(&plan);
	free(user);
	return status;
}

/* Prints the tasks of a GetStatus reply, one line each. */
static void ctl_print_tasks(json_object *tasks)
{
	size_t count = json_object_is_type(tasks, json_type_array)
			       ? json_object_array_length(tasks)
			       : 0;

	if (count == 0) {
		printf("Tasks:         none\n");
		return;
	}
	printf("Tasks:         %zu\n", count);
	for (size_t i = 0; i < count; i++) {
		json_object *task = json_object_array_get_idx(tasks, i);
		const char *end_user_id = ctl_json_text(task, "end_user_id");
		const char *task_id = ctl_json_text(task, "task_id");
		const char *state = ctl_json_text(task, "state");
		const char *user = ctl_json_text(task, "user");
		json_object *age;

		printf("  %s: EndUserId %s, %s, TaskId %s", user ? user : "-",
		       end_user_id ? end_user_id : "-",
		       state ? state : "unknown", task_id ? task_id : "-");
		if (json_object_object_get_ex(task, "age_ms", &age) &&
		    json_object_is_type(age, json_type_int))
			printf(", age %.1f s",
			       (double)json_object_get_int64(age) / 1000.0);
		putchar('\n');
	}
}

/*
 * Parses the options of a command that takes only --json and -h.  Returns
 * -1 to go on, or an exit status.
 */
static int ctl_parse_json_option(int argc, char **argv, bool *ret_json)
{
	static const struct option long_options[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "+:h", long_options, NULL)) != -1) {
		switch (c) {
		case 'h':
			ctl_print_usage(stdout);
			return CTL_EXIT_OK;
		case 'j':
			*ret_json = true;
			break;
		default:
			return ctl_option_error(c, argv);
		}
	}
	return -1;
}

static int ctl_run_status(const struct ctl_options *options, int argc,
			  char **argv)
{
	json_object *reply, *parameters, *tasks = NULL;
	struct cloudapp_client client;
	bool json = false, continues;
	const char *value;
	int status;

	status = ctl_parse_json_option(argc, argv, &json);
	if (status >= 0)
		return status;
	if (optind < argc) {
		ctl_log("unexpected argument \"%s\" for status", argv[optind]);
		return CTL_EXIT_USAGE;
	}

	status = ctl_call(&client, options, CLOUDAPP_METHOD_GET_STATUS, NULL,
			  false);
	if (status == CTL_EXIT_OK)
		status = ctl_receive(&client, options, "cannot get the status",
				     false, &reply, &parameters, &continues);
	cloudapp_client_close(&client);
	if (status != CTL_EXIT_OK)
		return status;

	if (json) {
		puts(json_object_to_json_string_ext(
			parameters, JSON_C_TO_STRING_PRETTY |
					    JSON_C_TO_STRING_SPACED |
					    JSON_C_TO_STRING_NOSLASHESCAPE));
	} else {
		static const struct {
			const char *key, *label;
		} fields[] = {
			{ "version", "Version:       " },
			{ "endpoint", "Endpoint:      " },
			{ "access_key_id", "AccessKeyId:   " },
			{ "credential_source", "Credentials:   " },
			{ "end_user_id_template", "EndUserId:     " },
		};

		/* The daemon shows the account details to root only. */
		for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]);
		     i++) {
			value = ctl_json_text(parameters, fields[i].key);
			if (value)
				printf("%s%s\n", fields[i].label, value);
		}
		json_object_object_get_ex(parameters, "tasks", &tasks);
		ctl_print_tasks(tasks);
	}
	json_object_put(reply);

	if (fflush(stdout) != 0) {
		ctl_log("cannot write to stdout: %s", strerror(errno));
		return CTL_EXIT_FAILURE;
	}
	return CTL_EXIT_OK;
}

/* Prints one "Label: value" line for each member of object. */
static void ctl_print_members(json_object *object, const char *indent)
{
	json_object_object_foreach(object, key, value)
	{
		if (json_object_is_type(value, json_type_array)) {
			printf("%s%s:", indent, key);
			for (size_t i = 0; i < json_object_array_length(value);
			     i++)
				printf(" %s",
				       json_object_get_string(
					       json_object_array_get_idx(value,
									 i)));
			putchar('\n');
		} else if (!json_object_is_type(value, json_type_object)) {
			printf("%s%s: %s\n", indent, key,
			       json_object_get_string(value));
		}
	}
}

static int ctl_run_resolve(const struct ctl_options *options, int argc,
			   char **argv)
{
	json_object *reply, *parameters, *call, *request;
	struct cloudapp_client client;
	bool json = false, continues;
	char *user;
	int status;

	status = ctl_parse_json_option(argc, argv, &json);
	if (status >= 0)
		return status;
	if (argc - optind > 1) {
		ctl_log("unexpected argument \"%s\" for resolve",
			argv[optind + 1]);
		return CTL_EXIT_USAGE;
	}
	status = ctl_resolve_user(optind < argc ? argv[optind] : NULL, &user);
	if (status != CTL_EXIT_OK)
		return status;

	call = json_object_new_object();
	json_object_object_add(call, "user", json_object_new_string(user));
	status = ctl_call(&client, options, CLOUDAPP_METHOD_RESOLVE_USER, call,
			  false);
	if (status == CTL_EXIT_OK)
		status = ctl_receive(&client, options, "cannot resolve the user",
				     false, &reply, &parameters, &continues);
	cloudapp_client_close(&client);
	free(user);
	if (status != CTL_EXIT_OK)
		return status;

	if (json) {
		puts(json_object_to_json_string_ext(
			parameters, JSON_C_TO_STRING_PRETTY |
					    JSON_C_TO_STRING_SPACED |
					    JSON_C_TO_STRING_NOSLASHESCAPE));
	} else {
		ctl_print_members(parameters, "");
		if (json_object_object_get_ex(parameters, "request",
					      &request)) {
			printf("request:\n");
			ctl_print_members(request, "  ");
		}
	}
	json_object_put(reply);
	return fflush(stdout) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAILURE;
}

/*
 * Checks a configuration file with the daemon's own parser, so that the
 * rules cannot drift apart: runs "cloudapp-ticketd --check-config".
 * CLOUDAPP_TICKETD names another daemon binary, for tests.
 */
static int ctl_run_check_config(const struct ctl_options *options, int argc,
				char **argv)
{
	const char *daemon = getenv("CLOUDAPP_TICKETD");
	const char *path = argc > 1 ? argv[1] : CLOUDAPP_CONFIG_FILE;

	if (argc > 2) {
		ctl_log("unexpected argument \"%s\" for check-config",
			argv[2]);
		return CTL_EXIT_USAGE;
	}
	if (!daemon || !*daemon)
		daemon = CLOUDAPP_TICKETD_PATH;
	fflush(stdout);
	execl(daemon, "cloudapp-ticketd", "--check-config", "--config", path,
	      (char *)NULL);
	ctl_log("cannot run %s: %s; run cloudapp-ticketd --check-config "
		"--config %s directly, or set CLOUDAPP_TICKETD to the "
		"daemon's path",
		daemon, strerror(errno), path);
	return CTL_EXIT_FAILURE;
}

/* Sorted by name; "cloudappctl --help" lists them likewise. */
static const struct ctl_command ctl_commands[] = {
	{ "check-config", ctl_run_check_config },
	{ "launch", ctl_run_launch },
	{ "resolve", ctl_run_resolve },
	{ "status", ctl_run_status },
	{ "ticket", ctl_run_ticket },
};

/* Parses the options before the command.  Returns -1 to go on, or an exit
 * status. */
static int ctl_parse_global_options(int argc, char **argv,
				    struct ctl_options *options)
{
	static const struct option long_options[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "socket", required_argument, NULL, 's' },
		{ "timeout", required_argument, NULL, 't' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int64_t timeout_ms;
	int c;

	while ((c = getopt_long(argc, argv, "+:hqs:t:V", long_options, NULL)) !=
	       -1) {
		switch (c) {
		case 'h':
			ctl_print_usage(stdout);
			return CTL_EXIT_OK;
		case 'q':
			options->quiet = true;
			break;
		case 's':
			if (!*optarg) {
				ctl_log("invalid socket path: it is empty");
				return CTL_EXIT_USAGE;
			}
			options->socket_path = optarg;
			break;
		case 't':
			if (cloudapp_parse_seconds(optarg,
						   (int64_t)CTL_TIMEOUT_MAX_MS,
						   &timeout_ms) < 0 ||
			    timeout_ms == 0) {
				ctl_log("invalid timeout \"%s\": expected "
					"seconds from 0.001 to %d",
					optarg, CTL_TIMEOUT_MAX_MS / 1000);
				return CTL_EXIT_USAGE;
			}
			options->timeout_ms = (int)timeout_ms;
			break;
		case 'V':
			printf("cloudappctl %s\n", PACKAGE_VERSION);
			return CTL_EXIT_OK;
		default:
			return ctl_option_error(c, argv);
		}
	}
	return -1;
}

int main(int argc, char **argv)
{
	struct ctl_options options = {
		.socket_path = CLOUDAPP_SOCKET_PATH,
		.timeout_ms = CTL_TIMEOUT_DEFAULT_MS,
		.quiet = false,
	};
	int status;

	status = ctl_parse_global_options(argc, argv, &options);
	if (status >= 0)
		return status;
	if (optind >= argc) {
		ctl_log("missing command; see cloudappctl --help");
		return CTL_EXIT_USAGE;
	}

	for (size_t i = 0; i < sizeof(ctl_commands) / sizeof(ctl_commands[0]);
	     i++) {
		if (strcmp(argv[optind], ctl_commands[i].name) == 0)
			return ctl_commands[i].run(&options, argc - optind,
						   argv + optind);
	}
	ctl_log("unknown command \"%s\"; see cloudappctl --help", argv[optind]);
	return CTL_EXIT_USAGE;
}
