/*
 * Ticket tasks: one per EndUserId, from the first GetConnectionTicket call
 * through the polls to a ticket kept in memory until its pickup, or to an
 * error.
 */

#ifndef CLOUDAPP_TASK_H
#define CLOUDAPP_TASK_H

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "api.h"
#include "conf.h"

enum task_state {
	TASK_QUEUED,   /* waiting for one of the max_tasks slots */
	TASK_STARTING, /* the first call is in flight */
	TASK_RUNNING,  /* the cloud task runs; polling */
	TASK_READY,    /* the ticket waits for pickup */
	TASK_FAILED,   /* the error waits for pickup */
};

/* Reason a running task waits, besides the cloud. */
enum task_wait {
	TASK_WAIT_NONE,
	TASK_WAIT_TASK_LIMIT, /* a free slot under max_tasks */
	TASK_WAIT_RATE_LIMIT, /* a token under max_requests_per_second */
	TASK_WAIT_RETRY,      /* the backoff after a failed request */
	TASK_WAIT_CONNECTION, /* one of the connections to the endpoint */
	TASK_WAIT_ROLE,       /* the RAM role's temporary credentials */
};

/* Failure of a task, as the wire protocol reports it. */
struct task_error {
	const char *name; /* a CLOUDAPP_ERROR_* constant */
	char *message;
	char *code;	  /* the API's Code, or NULL */
	char *request_id; /* the API's RequestId, or NULL */
	long http_status;
};

struct task;
struct task_registry;
struct task_waiter;

/*
 * Called when a task's state changes or a poll completes.  When the state
 * is TASK_READY or TASK_FAILED the call is the last one: the waiter is
 * removed and the task may be freed right after, so the callee copies what
 * it needs and drops its pointer to the task.
 */
typedef void (*task_notify_fn)(struct task *task, void *userdata);

/* Creates the registry and loads the credentials.  On failure *ret_error
 * contains the reason. */
int task_registry_new(sd_event *event, struct daemon_config *config,
		      struct task_registry **ret_registry, char **ret_error);

/*
 * Switches to a reloaded configuration for new tasks and the limits.
 * Running tasks keep the configuration they started with.  Fails, with
 * the old configuration kept, when the credentials cannot be read or,
 * once a task has loaded the trusted CAs, the new CA file cannot be
 * loaded.
 */
int task_registry_set_config(struct task_registry *registry,
			     struct daemon_config *config, char **ret_error);

void task_registry_free(struct task_registry *registry);

struct credentials;

/* The credentials in use; never the secret to show. */
const struct credentials *
task_registry_credentials(const struct task_registry *registry);

/* Returns the number of tasks in memory, and of them those still running. */
void task_registry_count(const struct task_registry *registry,
			 unsigned *ret_total, unsigned *ret_running);

/* Calls fn for each task, oldest first. */
void task_registry_foreach(struct task_registry *registry,
			   void (*fn)(struct task *task, void *userdata),
			   void *userdata);

/* Returns the task of an EndUserId, or NULL. */
struct task *task_find(struct task_registry *registry,
		       const char *end_user_id);

/*
 * Returns the EndUserId's task, starting one for user with profile (from
 * the registry's current configuration) when there is none or the
 * previous one failed.  Callers with the same EndUserId share the
 * task.  *ret_started is true when a new task began.  The first task
 * loads libcurl and the trusted CAs.  When that fails, *ret_error may
 * contain the reason, such as a libcurl that is not installed, for the
 * caller to free().
 */
int task_start(struct task_registry *registry, const char *user,
	       const char *end_user_id, const struct ticket_profile *profile,
	       struct task **ret_task, bool *ret_started, char **ret_error);

/* Like task_start(), with a profile of the caller's own that the task
 * takes over (and frees), such as one with another AppId. */
int task_start_owned(struct task_registry *registry, const char *user,
		     const char *end_user_id, struct ticket_profile *profile,
		     struct task **ret_task, bool *ret_started,
		     char **ret_error);

/* Frees a task and wipes its ticket; waiters are not notified. */
void task_drop(struct task *task);

/*
 * Ends a task on request: its waiters get a NoTicket error with reason,
 * then the task is freed.
 */
void task_cancel(struct task *task, const char *reason);

/*
 * Removes a finished task after its result was handed out.  Call it once a
 * TASK_READY or TASK_FAILED task's result has been copied.
 */
void task_consume(struct task *task);

/*
 * Adds a waiter.  One that watches gets the progress and the outcome but
 * leaves the ticket for pickup, as a login that waits for readiness does.
 */
struct task_waiter *task_add_waiter(struct task *task, task_notify_fn notify,
				    void *userdata, bool watches);

void task_remove_waiter(struct task *task, struct task_waiter *waiter);

enum task_state task_get_state(const struct task *task);
const char *task_state_name(enum task_state state);
/* "task_limit", "rate_limit", "retry", or NULL when not waiting. */
const char *task_get_wait_name(const struct task *task);
/* The place in the queue the task waits in, from 1, or 0. */
unsigned task_get_queue_position(const struct task *task);
/* The user who started the task. */
const char *task_get_user(const struct task *task);
const char *task_get_end_user_id(const struct task *task);
/* The profile the task runs with; it lives as long as the task. */
const struct ticket_profile *task_get_profile(const struct task *task);
const char *task_get_task_id(const struct task *task); /* may be NULL */
unsigned task_get_polls(const struct task *task);
uint64_t task_get_age_usec(const struct task *task);

/* The last successful response (ticket and fields) of a TASK_READY task. */
const struct api_result *task_get_result(const struct task *task);

/* The error of a TASK_FAILED task. */
const struct task_error *task_get_error(const struct task *task);

#endif
