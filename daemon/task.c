/*
 * The ticket task state machine.  A task makes the first GetConnectionTicket
 * call, then polls with the TaskId every poll_interval until TaskStatus is
 * Finished or Failed, all within ticket_timeout.  The finished result goes
 * to the waiters present at that moment; with none, it stays in memory for
 * pickup_timeout and is then wiped.
 */

#include "config.h"

#include "task.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http.h"
#include "log.h"
#include "protocol.h"
#include "util.h"

#define USEC_PER_MSEC 1000u

/* How late sd-event may fire the poll and deadline timers.  Its default,
 * 250 ms, would stretch a short poll interval noticeably. */
#define TASK_TIMER_ACCURACY_USEC (10 * USEC_PER_MSEC)

struct task_waiter {
	struct task_waiter *next;
	task_notify_fn notify;
	void *userdata;
};

struct task {
	struct task_registry *registry;
	struct task *next, *prev;
	char *user;
	char *end_user_id;
	char *task_id;
	enum task_state state;
	unsigned polls;
	uint64_t started_usec;
	struct api_result result;
	struct task_error error;
	struct http_transfer *transfer;
	sd_event_source *poll_timer;
	sd_event_source *deadline_timer;
	sd_event_source *expiry_timer;
	struct task_waiter *waiters;
};

struct task_registry {
	sd_event *event;
	const struct daemon_config *config;
	struct http_client *http;
	struct task *tasks, *tasks_tail;
};

static const char *const task_state_names[] = {
	[TASK_STARTING] = "starting",
	[TASK_RUNNING] = "running",
	[TASK_READY] = "ready",
	[TASK_FAILED] = "failed",
};

static void task_send_call(struct task *task);

static struct log_ids task_log_ids(const struct task *task,
				   const char *request_id, const char *code)
{
	return (struct log_ids){
		.user = task->user,
		.end_user_id = task->end_user_id,
		.task_id = task->task_id,
		.request_id = request_id,
		.cloud_error = code,
	};
}

static uint64_t task_now(const struct task_registry *registry)
{
	uint64_t now = 0;

	sd_event_now(registry->event, CLOCK_MONOTONIC, &now);
	return now;
}

int task_registry_new(sd_event *event, const struct daemon_config *config,
		      struct task_registry **ret_registry)
{
	struct task_registry *registry;
	int r;

	registry = calloc(1, sizeof(*registry));
	if (!registry)
		return -ENOMEM;
	registry->event = sd_event_ref(event);
	registry->config = config;
	r = http_client_new(event, &registry->http);
	if (r < 0) {
		sd_event_unref(registry->event);
		free(registry);
		return r;
	}
	*ret_registry = registry;
	return 0;
}

void task_registry_free(struct task_registry *registry)
{
	if (!registry)
		return;
	while (registry->tasks)
		task_drop(registry->tasks);
	http_client_free(registry->http);
	sd_event_unref(registry->event);
	free(registry);
}

void task_registry_count(const struct task_registry *registry,
			 unsigned *ret_total, unsigned *ret_running)
{
	unsigned total = 0, running = 0;

	for (const struct task *t = registry->tasks; t; t = t->next) {
		total++;
		if (t->state == TASK_STARTING || t->state == TASK_RUNNING)
			running++;
	}
	*ret_total = total;
	*ret_running = running;
}

void task_registry_foreach(struct task_registry *registry,
			   void (*fn)(struct task *task, void *userdata),
			   void *userdata)
{
	struct task *next;

	for (struct task *t = registry->tasks; t; t = next) {
		next = t->next;
		fn(t, userdata);
	}
}

struct task *task_find(struct task_registry *registry, const char *user)
{
	for (struct task *t = registry->tasks; t; t = t->next)
		if (strcmp(t->user, user) == 0)
			return t;
	return NULL;
}

static void task_error_clear(struct task_error *error)
{
	free(error->message);
	free(error->code);
	free(error->request_id);
	memset(error, 0, sizeof(*error));
}

void task_drop(struct task *task)
{
	struct task_registry *registry = task->registry;

	if (task->prev)
		task->prev->next = task->next;
	else
		registry->tasks = task->next;
	if (task->next)
		task->next->prev = task->prev;
	else
		registry->tasks_tail = task->prev;

	http_transfer_cancel(task->transfer);
	sd_event_source_disable_unref(task->poll_timer);
	sd_event_source_disable_unref(task->deadline_timer);
	sd_event_source_disable_unref(task->expiry_timer);
	while (task->waiters) {
		struct task_waiter *w = task->waiters;

		task->waiters = w->next;
		free(w);
	}
	api_result_clear(&task->result);
	task_error_clear(&task->error);
	free(task->user);
	free(task->end_user_id);
	free(task->task_id);
	free(task);
}

void task_consume(struct task *task)
{
	if (task->state == TASK_READY) {
		struct log_ids ids = task_log_ids(task, NULL, NULL);

		log_ids(LOG_INFO, &ids, "ticket handed out and wiped");
	}
	task_drop(task);
}

/* Tells every waiter about progress; the final call also removes them. */
static void task_notify(struct task *task)
{
	bool final = task->state == TASK_READY || task->state == TASK_FAILED;
	struct task_waiter *w = task->waiters, *next;
	bool had_waiters = w != NULL;

	if (final)
		task->waiters = NULL;
	for (; w; w = next) {
		next = w->next;
		w->notify(task, w->userdata);
		if (final)
			free(w);
	}
	if (final && had_waiters)
		task_consume(task);
}

static int task_on_expiry(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct task *task = userdata;
	struct log_ids ids = task_log_ids(task, NULL, NULL);

	log_ids(LOG_NOTICE, &ids, "%s not picked up within %lld s, wiped",
		task->state == TASK_READY ? "ticket" : "error",
		(long long)task->registry->config->pickup_timeout_ms / 1000);
	task_drop(task);
	return 0;
}

/* Ends a task; with nobody waiting the result waits for pickup. */
static void task_finish(struct task *task, enum task_state state)
{
	struct task_registry *registry = task->registry;

	task->state = state;
	sd_event_source_disable_unref(task->poll_timer);
	task->poll_timer = NULL;
	sd_event_source_disable_unref(task->deadline_timer);
	task->deadline_timer = NULL;

	if (!task->waiters) {
		uint64_t expiry = task_now(registry) +
				  (uint64_t)registry->config->pickup_timeout_ms *
					  USEC_PER_MSEC;

		if (sd_event_add_time(registry->event, &task->expiry_timer,
				      CLOCK_MONOTONIC, expiry, 0,
				      task_on_expiry, task) < 0) {
			log_error("cannot arm the pickup timer, dropping the "
				  "result now");
			task_drop(task);
		}
		return;
	}
	task_notify(task);
}

static void task_fail(struct task *task, const char *name, const char *code,
		      const char *request_id, long http_status,
		      const char *format, ...)
	__attribute__((format(printf, 6, 7)));

static void task_fail(struct task *task, const char *name, const char *code,
		      const char *request_id, long http_status,
		      const char *format, ...)
{
	struct log_ids ids = task_log_ids(task, request_id, code);
	va_list ap;

	task_error_clear(&task->error);
	task->error.name = name;
	va_start(ap, format);
	if (vasprintf(&task->error.message, format, ap) < 0)
		task->error.message = NULL;
	va_end(ap);
	task->error.code = code ? strdup(code) : NULL;
	task->error.request_id = request_id ? strdup(request_id) : NULL;
	task->error.http_status = http_status;

	log_ids(LOG_ERR, &ids, "ticket task failed: %s",
		task->error.message ? task->error.message : name);
	task_finish(task, TASK_FAILED);
}

static int task_on_poll_timer(sd_event_source *s, uint64_t usec,
			      void *userdata)
{
	struct task *task = userdata;

	sd_event_source_disable_unref(task->poll_timer);
	task->poll_timer = NULL;
	task_send_call(task);
	return 0;
}

static void task_schedule_poll(struct task *task)
{
	struct task_registry *registry = task->registry;
	uint64_t when = task_now(registry) +
			(uint64_t)registry->config->poll_interval_ms *
				USEC_PER_MSEC;

	if (sd_event_add_time(registry->event, &task->poll_timer,
			      CLOCK_MONOTONIC, when, TASK_TIMER_ACCURACY_USEC,
			      task_on_poll_timer,
			      task) < 0)
		task_fail(task, CLOUDAPP_ERROR_INTERNAL, NULL, NULL, 0,
			  "cannot arm the poll timer");
}

/* Moves the fields of a successful response into the task. */
static void task_take_result(struct task *task, struct api_result *result)
{
	api_result_clear(&task->result);
	task->result = *result;
	memset(result, 0, sizeof(*result));
}

static void task_on_success(struct task *task, struct api_result *result)
{
	const char *status = result->task_status ? result->task_status : "";
	struct log_ids ids = task_log_ids(task, result->request_id, NULL);

	if (!task->task_id && result->task_id) {
		task->task_id = strdup(result->task_id);
		ids.task_id = task->task_id;
	}
	if (!task->task_id)
		return task_fail(task, CLOUDAPP_ERROR_CLOUD, NULL,
				 result->request_id, result->http_status,
				 "the response has no TaskId");

	if (strcmp(status, "Finished") == 0) {
		if (!result->ticket || !*result->ticket)
			return task_fail(task, CLOUDAPP_ERROR_CLOUD, NULL,
					 result->request_id,
					 result->http_status,
					 "TaskStatus is Finished but the "
					 "response has no Ticket");
		log_ids(LOG_INFO, &ids,
			"ticket ready after %u polls, %zu bytes, in %.1f s",
			task->polls, strlen(result->ticket),
			(double)(task_now(task->registry) -
				 task->started_usec) /
				1e6);
		task_take_result(task, result);
		return task_finish(task, TASK_READY);
	}
	if (strcmp(status, "Failed") == 0)
		return task_fail(task, CLOUDAPP_ERROR_TASK_FAILED, NULL,
				 result->request_id, result->http_status,
				 "the cloud task for EndUserId %s ended "
				 "with TaskStatus Failed",
				 task->end_user_id);

	log_ids(LOG_DEBUG, &ids, "task %s, poll %u",
		*status ? status : "without status", task->polls);
	if (task->state == TASK_STARTING) {
		log_ids(LOG_INFO, &ids, "cloud task started");
		task->state = TASK_RUNNING;
	}
	task_notify(task);
	task_schedule_poll(task);
}

static void task_on_response(const struct http_response *response,
			     void *userdata)
{
	struct task *task = userdata;
	struct api_result result;
	char *error = NULL;
	int r;

	task->transfer = NULL;
	task->polls++;
	if (response->curl_code != 0)
		return task_fail(task, CLOUDAPP_ERROR_CLOUD, NULL, NULL, 0,
				 "cannot reach %s: %s",
				 task->registry->config->endpoint,
				 response->error);

	r = api_result_parse(response->status, response->body,
			     response->body_len, &result, &error);
	if (r < 0) {
		task_fail(task, CLOUDAPP_ERROR_CLOUD, NULL, NULL,
			  response->status, "invalid response from %s: %s",
			  task->registry->config->endpoint,
			  error ? error : strerror(-r));
		free(error);
		return;
	}
	if (r == 1) {
		task_fail(task, CLOUDAPP_ERROR_CLOUD, result.code,
			  result.request_id, result.http_status,
			  "GetConnectionTicket failed with HTTP %ld: %s",
			  result.http_status,
			  *result.message ? result.message : result.code);
		api_result_clear(&result);
		return;
	}
	task_on_success(task, &result);
	api_result_clear(&result);
}

static void task_send_call(struct task *task)
{
	const struct daemon_config *config = task->registry->config;
	struct api_credentials credentials = {
		.access_key_id = config->access_key_id,
		.access_key_secret = config->access_key_secret,
	};
	struct api_ticket_call call = {
		.product_type = config->product_type,
		.end_user_id = task->end_user_id,
		.app_id = config->app_id,
		.task_id = task->task_id,
	};
	struct api_request request;
	struct http_request http = { 0 };
	int r;

	r = api_request_build(config->endpoint, config->endpoint_host,
			      &credentials, &call, time(NULL), &request);
	if (r < 0)
		return task_fail(task, CLOUDAPP_ERROR_INTERNAL, NULL, NULL, 0,
				 "cannot build the request: %s", strerror(-r));

	http.url = request.url;
	http.headers = (const char *const *)request.headers;
	http.body = request.body;
	http.body_len = request.body_len;
	http.ca_file = config->ca_file;
	http.timeout_ms = (long)config->request_timeout_ms;
	r = http_client_post(task->registry->http, &http, task_on_response,
			     task, &task->transfer);
	api_request_clear(&request);
	if (r < 0)
		task_fail(task, CLOUDAPP_ERROR_INTERNAL, NULL, NULL, 0,
			  "cannot start the request: %s", strerror(-r));
}

static int task_on_deadline(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct task *task = userdata;

	http_transfer_cancel(task->transfer);
	task->transfer = NULL;
	task_fail(task, CLOUDAPP_ERROR_TIMEOUT, NULL, NULL, 0,
		  "no ticket for EndUserId %s within %lld s (TaskId %s, %u "
		  "calls)",
		  task->end_user_id,
		  (long long)task->registry->config->ticket_timeout_ms / 1000,
		  task->task_id ? task->task_id : "none", task->polls);
	return 0;
}

static struct task *task_new(struct task_registry *registry,
			     const char *user, const char *end_user_id)
{
	struct task *task = calloc(1, sizeof(*task));

	if (!task)
		return NULL;
	task->registry = registry;
	task->user = strdup(user);
	task->end_user_id = strdup(end_user_id);
	task->started_usec = task_now(registry);
	task->prev = registry->tasks_tail;
	if (task->prev)
		task->prev->next = task;
	else
		registry->tasks = task;
	registry->tasks_tail = task;
	if (!task->user || !task->end_user_id) {
		task_drop(task);
		return NULL;
	}
	return task;
}

int task_start(struct task_registry *registry, const char *user,
	       const char *end_user_id, struct task **ret_task,
	       bool *ret_started)
{
	struct task *task = task_find(registry, user);
	struct log_ids ids;
	uint64_t deadline;
	int r;

	*ret_started = false;
	if (task && task->state != TASK_FAILED &&
	    strcmp(task->end_user_id, end_user_id) == 0) {
		*ret_task = task;
		return 0;
	}
	if (task)
		task_drop(task);

	task = task_new(registry, user, end_user_id);
	if (!task)
		return -ENOMEM;
	deadline = task->started_usec +
		   (uint64_t)registry->config->ticket_timeout_ms * USEC_PER_MSEC;
	r = sd_event_add_time(registry->event, &task->deadline_timer,
			      CLOCK_MONOTONIC, deadline,
			      TASK_TIMER_ACCURACY_USEC, task_on_deadline,
			      task);
	if (r < 0) {
		task_drop(task);
		return r;
	}

	ids = task_log_ids(task, NULL, NULL);
	log_ids(LOG_INFO, &ids, "starting ticket task");
	task_send_call(task);
	/* task_send_call() may fail the task, which then waits for pickup
	 * like any other result. */
	*ret_task = task;
	*ret_started = true;
	return 0;
}

void task_cancel(struct task *task, const char *reason)
{
	if (!task->waiters) {
		task_drop(task);
		return;
	}
	http_transfer_cancel(task->transfer);
	task->transfer = NULL;
	task_fail(task, CLOUDAPP_ERROR_NO_TICKET, NULL, NULL, 0, "%s", reason);
}

struct task_waiter *task_add_waiter(struct task *task, task_notify_fn notify,
				    void *userdata)
{
	struct task_waiter *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->notify = notify;
	w->userdata = userdata;
	w->next = task->waiters;
	task->waiters = w;
	return w;
}

void task_remove_waiter(struct task *task, struct task_waiter *waiter)
{
	for (struct task_waiter **p = &task->waiters; *p; p = &(*p)->next) {
		if (*p == waiter) {
			*p = waiter->next;
			free(waiter);
			return;
		}
	}
}

enum task_state task_get_state(const struct task *task)
{
	return task->state;
}

const char *task_state_name(enum task_state state)
{
	return task_state_names[state];
}

const char *task_get_user(const struct task *task)
{
	return task->user;
}

const char *task_get_end_user_id(const struct task *task)
{
	return task->end_user_id;
}

const char *task_get_task_id(const struct task *task)
{
	return task->task_id;
}

unsigned task_get_polls(const struct task *task)
{
	return task->polls;
}

uint64_t task_get_age_usec(const struct task *task)
{
	return task_now(task->registry) - task->started_usec;
}

const struct api_result *task_get_result(const struct task *task)
{
	return &task->result;
}

const struct task_error *task_get_error(const struct task *task)
{
	return &task->error;
}
