/*
 * "cloudappctl launch": writes the ticket to a new file in
 * $XDG_RUNTIME_DIR readable only by the caller, expands the placeholders of
 * the client command, runs the client without a shell, forwards termination
 * signals to it, and removes the file when it exits.  The ticket reaches
 * the client only through the file, never through argv or the environment.
 */

#include "config.h"

#include "launch.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "placeholder.h"
#include "protocol.h"
#include "util.h"

#define LAUNCH_TICKET_FILE_PREFIX "cloudapp-ticket-"
#define LAUNCH_TICKET_FILE_SUFFIX_LEN 6
#define LAUNCH_TICKET_FILE_NAME_MAX                                            \
	(sizeof(LAUNCH_TICKET_FILE_PREFIX) + LAUNCH_TICKET_FILE_SUFFIX_LEN)
/* Attempts at a unique name before giving up, as mkstemp() does. */
#define LAUNCH_TICKET_FILE_ATTEMPTS 100

/* Signals that reach cloudappctl and are passed on to the client, so
 * that cloudappctl outlives the client and removes the ticket file.  Any
 * signal whose default action ends the process belongs here, except
 * SIGKILL and SIGSTOP, which cannot be caught, and the fault signals. */
static const int launch_forwarded_signals[] = {
	SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM,
};
#define LAUNCH_FORWARDED_SIGNAL_COUNT                                          \
	(sizeof(launch_forwarded_signals) / sizeof(launch_forwarded_signals[0]))

/* The client's pid while cloudappctl waits for it, for the signal handler. */
static volatile sig_atomic_t launch_child_pid;

/* Set when cloudappctl itself got a terminating signal. */
static volatile sig_atomic_t launch_signal_received;

bool launch_stopped_by_request(void)
{
	return launch_signal_received != 0;
}

/* Values for expanding placeholders; parameters is NULL for a dry run. */
struct launch_values {
	json_object *parameters;
	const char *user;
	const char *ticket_file;
};

void launch_wipe_ticket(json_object *parameters)
{
	json_object *ticket;

	if (!parameters ||
	    !json_object_object_get_ex(parameters, "ticket", &ticket) ||
	    !json_object_is_type(ticket, json_type_string))
		return;
	/* json-c keeps the string in heap memory owned by the object, so
	 * writing to it is safe even though the getter returns const. */
	cloudapp_wipe((char *)json_object_get_string(ticket),
		      (size_t)json_object_get_string_len(ticket));
}

/* Returns the value of a known placeholder; absent members expand to "". */
static const char *placeholder_value(const struct launch_values *values,
				     const char *name)
{
	const char *value;

	if (strcmp(name, "ticket_file") == 0)
		return values->ticket_file;
	value = ctl_json_text(values->parameters, name);
	if (!value && strcmp(name, "user") == 0)
		value = values->user;
	return value ? value : "";
}

/*
 * Expands "%{name}" and "%%" in one argument into *ret_argument.  A '%'
 * followed by anything else stays as it is, so "100%" needs no escaping.
 * Sets *used_ticket_file when the argument contains %{ticket_file}.
 * Returns 0, -EINVAL after printing the error, or -ENOMEM.
 */
static int expand_argument(const char *argument,
			   const struct launch_values *values,
			   char **ret_argument, bool *used_ticket_file)
{
	char *expanded = NULL, name[64];
	size_t expanded_len;
	FILE *out;
	int r = 0;

	out = open_memstream(&expanded, &expanded_len);
	if (!out)
		return -ENOMEM;

	for (const char *p = argument; *p; p++) {
		const char *end;
		size_t name_len;

		if (p[0] != '%' || (p[1] != '%' && p[1] != '{')) {
			fputc(*p, out);
			continue;
		}
		if (p[1] == '%') {
			fputc('%', out);
			p++;
			continue;
		}

		end = strchr(p + 2, '}');
		if (!end) {
			ctl_log("unterminated placeholder in argument "
				"\"%s\"; write %%%% for a literal %%",
				argument);
			r = -EINVAL;
			break;
		}
		/* A name too long for the buffer is unknown anyway. */
		name_len = (size_t)(end - (p + 2));
		if (name_len >= sizeof(name))
			name_len = 0;
		memcpy(name, p + 2, name_len);
		name[name_len] = '\0';

		if (strcmp(name, "ticket") == 0) {
			ctl_log("no placeholder %%{ticket}: the ticket is "
				"given to the client only as a file, use "
				"%%{ticket_file}");
			r = -EINVAL;
			break;
		}
		if (!cloudapp_placeholder_known(name)) {
			ctl_log("unknown placeholder %%{%.*s} in argument "
				"\"%s\"",
				(int)(end - (p + 2)), p + 2, argument);
			r = -EINVAL;
			break;
		}

		if (strcmp(name, "ticket_file") == 0)
			*used_ticket_file = true;
		fputs(placeholder_value(values, name), out);
		p = end;
	}

	if (fclose(out) != 0 && r == 0)
		r = -ENOMEM;
	if (r < 0) {
		free(expanded);
		return r;
	}
	*ret_argument = expanded;
	return 0;
}

static void free_argv(char **argv)
{
	if (!argv)
		return;
	for (char **p = argv; *p; p++)
		free(*p);
	free(argv);
}

/*
 * Expands the template into a NULL-terminated argv, appending the ticket
 * file as the last argument when no argument names it.  Returns 0, -EINVAL
 * after printing the error, or -ENOMEM.
 */
static int build_argv(const char *const *template, size_t count,
		      const struct launch_values *values, char ***ret_argv)
{
	bool used_ticket_file = false;
	char **argv;
	size_t i;
	int r;

	/* One slot for the ticket file and one for NULL. */
	argv = calloc(count + 2, sizeof(*argv));
	if (!argv)
		return -ENOMEM;

	for (i = 0; i < count; i++) {
		r = expand_argument(template[i], values, &argv[i],
				    &used_ticket_file);
		if (r < 0) {
			free_argv(argv);
			return r;
		}
	}
	if (!used_ticket_file) {
		argv[i] = strdup(values->ticket_file);
		if (!argv[i]) {
			free_argv(argv);
			return -ENOMEM;
		}
	}

	*ret_argv = argv;
	return 0;
}

/*
 * Opens $XDG_RUNTIME_DIR after checking that it is a directory owned by the
 * caller that neither group nor others can write, so no one else can
 * replace or read the ticket file.  Returns the descriptor or -errno after
 * printing the error.
 */
static int open_runtime_dir(const char *path)
{
	struct stat st;
	int fd;

	if (!path || !*path) {
		ctl_log("XDG_RUNTIME_DIR is not set; run launch in a login "
			"session, or set it to a private directory");
		return -ENOENT;
	}
	if (path[0] != '/') {
		ctl_log("XDG_RUNTIME_DIR is not an absolute path: %s", path);
		return -EINVAL;
	}

	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		int r = -errno;

		ctl_log("cannot open XDG_RUNTIME_DIR %s: %s", path,
			strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0) {
		int r = -errno;

		ctl_log("cannot stat XDG_RUNTIME_DIR %s: %s", path,
			strerror(-r));
		close(fd);
		return r;
	}
	if (st.st_uid != geteuid()) {
		ctl_log("XDG_RUNTIME_DIR %s is owned by uid %u, not by you "
			"(uid %u)",
			path, (unsigned)st.st_uid, (unsigned)geteuid());
		close(fd);
		return -EPERM;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		ctl_log("XDG_RUNTIME_DIR %s is writable by group or others "
			"(mode %04o); it must be private, for example 0700",
			path, (unsigned)(st.st_mode & 07777));
		close(fd);
		return -EPERM;
	}
	return fd;
}

/*
 * Checks that every argument of a command-line client command expands,
 * without any values yet.
 */
static int check_command(char **command, int command_count)
{
	const struct launch_values dry_run = { .user = "", .ticket_file = "" };
	char **argv;
	int r;

	r = build_argv((const char *const *)command, (size_t)command_count,
		       &dry_run, &argv);
	if (r == -ENOMEM)
		ctl_log("out of memory");
	if (r < 0)
		return r;
	free_argv(argv);
	return 0;
}

int launch_plan_init(struct launch_plan *plan, char **command,
		     int command_count, bool quiet)
{
	int fd;

	memset(plan, 0, sizeof(*plan));
	plan->runtime_dir_fd = -1;
	plan->command = command_count > 0 ? command : NULL;
	plan->command_count = command_count;
	plan->quiet = quiet;

	if (plan->command && check_command(command, command_count) < 0)
		return CTL_EXIT_USAGE;

	plan->runtime_dir = getenv("XDG_RUNTIME_DIR");
	fd = open_runtime_dir(plan->runtime_dir);
	if (fd < 0)
		return CTL_EXIT_FAILURE;
	plan->runtime_dir_fd = fd;
	return CTL_EXIT_OK;
}

void launch_plan_done(struct launch_plan *plan)
{
	if (plan->runtime_dir_fd >= 0)
		close(plan->runtime_dir_fd);
	plan->runtime_dir_fd = -1;
}

/*
 * Returns the client command template: the command line's, or else the
 * reply's client_command, which must be a non-empty array of strings.
 * Returns NULL after printing the error.
 */
static const char **get_template(const struct launch_plan *plan,
				 json_object *parameters, size_t *ret_count)
{
	json_object *array;
	const char **template;
	size_t count;

	if (plan->command) {
		*ret_count = (size_t)plan->command_count;
		return (const char **)plan->command;
	}

	if (!json_object_object_get_ex(parameters, "client_command", &array)) {
		ctl_log("no client command: set client_command in "
			"cloudapp.conf or give one after --");
		return NULL;
	}
	count = json_object_is_type(array, json_type_array)
			? json_object_array_length(array)
			: 0;
	if (count == 0) {
		ctl_log("invalid reply from cloudapp-ticketd: client_command "
			"is not a non-empty array of strings");
		return NULL;
	}

	template = calloc(count, sizeof(*template));
	if (!template) {
		ctl_log("out of memory");
		return NULL;
	}
	for (size_t i = 0; i < count; i++) {
		json_object *item = json_object_array_get_idx(array, i);

		if (!json_object_is_type(item, json_type_string)) {
			ctl_log("invalid reply from cloudapp-ticketd: "
				"client_command[%zu] is not a string",
				i);
			free(template);
			return NULL;
		}
		template[i] = json_object_get_string(item);
	}
	*ret_count = count;
	return template;
}

/*
 * Creates a new file named cloudapp-ticket-XXXXXX in the runtime
 * directory, mode 0600, and stores its name in name.  Returns the
 * descriptor or -errno.
 */
static int create_ticket_file(int dir_fd,
			      char name[LAUNCH_TICKET_FILE_NAME_MAX])
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz"
				       "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

	for (int attempt = 0; attempt < LAUNCH_TICKET_FILE_ATTEMPTS;
	     attempt++) {
		unsigned char random_bytes[LAUNCH_TICKET_FILE_SUFFIX_LEN];
		char *suffix = name + strlen(LAUNCH_TICKET_FILE_PREFIX);
		int fd;

		if (getrandom(random_bytes, sizeof(random_bytes), 0) !=
		    (ssize_t)sizeof(random_bytes))
			return errno ? -errno : -EIO;
		strcpy(name, LAUNCH_TICKET_FILE_PREFIX);
		for (size_t i = 0; i < sizeof(random_bytes); i++)
			suffix[i] = alphabet[random_bytes[i] %
					     (sizeof(alphabet) - 1)];
		suffix[sizeof(random_bytes)] = '\0';

		fd = openat(dir_fd, name,
			    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
				    O_CLOEXEC,
			    0600);
		if (fd >= 0)
			return fd;
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}

/*
 * Writes the ticket to a new file in the runtime directory and wipes the
 * ticket from memory.  Returns 0 and the file's name, or -errno after
 * printing the error.
 */
static int write_ticket_file(const struct launch_plan *plan,
			     json_object *parameters,
			     char name[LAUNCH_TICKET_FILE_NAME_MAX])
{
	const char *ticket = cloudapp_json_string(parameters, "ticket");
	int fd, r;

	fd = create_ticket_file(plan->runtime_dir_fd, name);
	if (fd < 0) {
		ctl_log("cannot create a ticket file in %s: %s",
			plan->runtime_dir, strerror(-fd));
		return fd;
	}

	r = ctl_write_all(fd, ticket, strlen(ticket));
	launch_wipe_ticket(parameters);
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r < 0) {
		ctl_log("cannot write the ticket file %s/%s: %s",
			plan->runtime_dir, name, strerror(-r));
		unlinkat(plan->runtime_dir_fd, name, 0);
	}
	return r;
}

/*
 * Passes a signal on to the client.  A signal from the terminal (Ctrl-C,
 * hangup) has already reached the client, which shares the foreground
 * process group, so only signals sent by a process are forwarded.
 */
static void forward_signal(int signal_number, siginfo_t *info, void *context)
{
	int saved_errno = errno;

	launch_signal_received = 1;
	if (info->si_code != SI_KERNEL && launch_child_pid > 0)
		kill((pid_t)launch_child_pid, signal_number);
	errno = saved_errno;
}

static void install_forwarding(struct sigaction *old_actions)
{
	struct sigaction action = {
		.sa_sigaction = forward_signal,
		.sa_flags = SA_SIGINFO | SA_RESTART,
	};

	sigemptyset(&action.sa_mask);
	for (size_t i = 0; i < LAUNCH_FORWARDED_SIGNAL_COUNT; i++)
		sigaction(launch_forwarded_signals[i], &action,
			  &old_actions[i]);
}

static void restore_signals(const struct sigaction *old_actions)
{
	for (size_t i = 0; i < LAUNCH_FORWARDED_SIGNAL_COUNT; i++)
		sigaction(launch_forwarded_signals[i], &old_actions[i], NULL);
}

/* Runs the child side of fork(): never returns. */
static void exec_client(char **argv, const struct sigaction *old_actions,
			const sigset_t *old_mask)
{
	/* Restore the dispositions cloudappctl was started with, so a
	 * signal ignored by the caller (nohup) stays ignored in the client. */
	restore_signals(old_actions);
	sigprocmask(SIG_SETMASK, old_mask, NULL);

	execvp(argv[0], argv);
	ctl_log("cannot run %s: %s", argv[0], strerror(errno));
	_exit(CTL_EXIT_EXEC_FAILED);
}

/*
 * Runs argv, forwarding launch_forwarded_signals to it, and waits for it.
 * Returns its exit status, 128 + the signal that killed it, or
 * CTL_EXIT_FAILURE after printing the error.
 */
static int run_client(char **argv)
{
	struct sigaction old_actions[LAUNCH_FORWARDED_SIGNAL_COUNT];
	sigset_t forwarded, old_mask;
	int wait_status;
	pid_t pid;

	/* Block the signals until launch_child_pid is set, so none arrives
	 * between fork() and the handler knowing whom to forward to. */
	sigemptyset(&forwarded);
	for (size_t i = 0; i < LAUNCH_FORWARDED_SIGNAL_COUNT; i++)
		sigaddset(&forwarded, launch_forwarded_signals[i]);
	sigprocmask(SIG_BLOCK, &forwarded, &old_mask);
	install_forwarding(old_actions);

	pid = fork();
	if (pid == 0)
		exec_client(argv, old_actions, &old_mask);
	if (pid < 0) {
		int r = errno;

		restore_signals(old_actions);
		sigprocmask(SIG_SETMASK, &old_mask, NULL);
		ctl_log("cannot start %s: fork failed: %s", argv[0],
			strerror(r));
		return CTL_EXIT_FAILURE;
	}

	launch_child_pid = pid;
	sigprocmask(SIG_SETMASK, &old_mask, NULL);

	while (waitpid(pid, &wait_status, 0) < 0) {
		if (errno != EINTR) {
			ctl_log("cannot wait for %s: %s", argv[0],
				strerror(errno));
			wait_status = -1;
			break;
		}
	}

	launch_child_pid = 0;
	restore_signals(old_actions);

	if (wait_status == -1)
		return CTL_EXIT_FAILURE;
	if (WIFSIGNALED(wait_status))
		return 128 + WTERMSIG(wait_status);
	return WEXITSTATUS(wait_status);
}

/*
 * Expands the client command for the ticket file and runs it.  Returns the
 * client's status or a CTL_EXIT_* status.
 */
static int expand_and_run(const struct launch_plan *plan,
			  json_object *parameters, const char *user,
			  const char **template, size_t count,
			  const char *ticket_file)
{
	const struct launch_values values = {
		.parameters = parameters,
		.user = user,
		.ticket_file = ticket_file,
	};
	char **argv;
	int r;

	r = build_argv(template, count, &values, &argv);
	if (r == -ENOMEM)
		ctl_log("out of memory");
	if (r < 0)
		return CTL_EXIT_FAILURE;

	if (!plan->quiet)
		ctl_log("starting %s for %s", argv[0], user);
	r = run_client(argv);
	free_argv(argv);
	return r;
}

int launch_run(struct launch_plan *plan, json_object *parameters,
	       const char *user)
{
	char name[LAUNCH_TICKET_FILE_NAME_MAX], *ticket_file = NULL;
	const char **template;
	size_t count;
	int status;

	template = get_template(plan, parameters, &count);
	if (!template) {
		launch_wipe_ticket(parameters);
		return CTL_EXIT_FAILURE;
	}

	if (write_ticket_file(plan, parameters, name) < 0) {
		status = CTL_EXIT_FAILURE;
		goto out;
	}
	if (asprintf(&ticket_file, "%s%s%s", plan->runtime_dir,
		     plan->runtime_dir[strlen(plan->runtime_dir) - 1] == '/'
			     ? ""
			     : "/",
		     name) < 0) {
		ticket_file = NULL;
		ctl_log("out of memory");
		status = CTL_EXIT_FAILURE;
	} else {
		status = expand_and_run(plan, parameters, user, template, count,
					ticket_file);
	}

	/* NOTE: if cloudappctl itself is killed with SIGKILL the file stays
	 * until the runtime directory is removed at logout. */
	if (unlinkat(plan->runtime_dir_fd, name, 0) < 0 && errno != ENOENT)
		ctl_log("cannot remove the ticket file %s/%s: %s",
			plan->runtime_dir, name, strerror(errno));

out:
	free(ticket_file);
	if (template != (const char **)plan->command)
		free(template);
	return status;
}
