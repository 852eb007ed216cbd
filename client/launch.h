/*
 * "cloudappctl launch": writes the ticket to a private file, runs the cloud
 * app client on it and removes the file when the client exits.  Also
 * declares the few helpers that cloudappctl.c shares with launch.c.
 */

#ifndef CLOUDAPP_LAUNCH_H
#define CLOUDAPP_LAUNCH_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

/* Exit statuses of cloudappctl; "launch" exits with the client's status. */
enum {
	CTL_EXIT_OK = 0,
	CTL_EXIT_FAILURE = 1,	  /* error from the daemon or the cloud */
	CTL_EXIT_USAGE = 2,	  /* invalid command line */
	CTL_EXIT_UNREACHABLE = 3, /* daemon not reachable or closed early */
	CTL_EXIT_EXEC_FAILED = 127,
};

/* Prints "cloudappctl: ", the message and a newline on stderr. */
void ctl_log(const char *format, ...) __attribute__((format(printf, 1, 2)));

/*
 * Returns member key of object as text: a string as it is, an integer in
 * decimal.  Returns NULL when object is NULL or the member is missing or
 * of another type.
 */
const char *ctl_json_text(json_object *object, const char *key);

/* Writes all of data to fd, retrying on EINTR.  Returns 0 or -errno. */
int ctl_write_all(int fd, const void *data, size_t len);

/* Overwrites the "ticket" string member of a reply in place. */
void launch_wipe_ticket(json_object *parameters);

/* Preparations of "launch" made before the ticket is fetched. */
struct launch_plan {
	int runtime_dir_fd;	 /* $XDG_RUNTIME_DIR, checked */
	const char *runtime_dir; /* its path, for %{ticket_file} */
	char **command;		 /* argv after "--", or NULL */
	int command_count;
	bool quiet;
};

/*
 * Checks $XDG_RUNTIME_DIR and the placeholders of the command given on the
 * command line, so that a bad setup is reported before the daemon hands
 * out the ticket, which it does only once.  Prints the error and returns
 * a CTL_EXIT_* status; on CTL_EXIT_OK the caller ends with launch_run()
 * or launch_plan_done().
 */
int launch_plan_init(struct launch_plan *plan, char **command,
		     int command_count, bool quiet);

void launch_plan_done(struct launch_plan *plan);

/*
 * Runs the client for the final GetTicket reply parameters: writes the
 * ticket file, wipes the ticket, starts the client, waits for it and
 * removes the file.  Returns the client's exit status (128 + signal when it
 * was killed), or a CTL_EXIT_* status after printing the error.
 */
int launch_run(struct launch_plan *plan, json_object *parameters,
	       const char *user);

/* True when the last client ended by a signal cloudappctl passed on to
 * it, that is, on purpose. */
bool launch_stopped_by_request(void);

#endif
