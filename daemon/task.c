/*
 * The ticket task state machine.  A task makes the first GetConnectionTicket
 * call, then polls with the TaskId until TaskStatus is Finished or Failed,
 * all within ticket_timeout.  Callers asking for the same EndUserId share
 * one task.  The finished result goes to the waiters present at that
 * moment; with none, it stays in memory for pickup_timeout and is wiped.
 *
 * Two limits order the work.  At most max_tasks tasks run at once, and
 * later ones queue for a slot in arrival order.  Every API request, first
 * call, poll or retry, takes a token from a bucket refilled at
 * max_requests_per_second, and requests without a token queue in order.
 */

#include "config.h"

#include "task.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "credentials.h"
#include "http.h"
#include "ratelimit.h"
#include "log.h"
#include "protocol.h"
#include "retry.h"
#include "sts.h"
#include "util.h"

#define USEC_PER_MSEC UINT64_C(1000)
#define USEC_PER_SEC UINT64_C(1000000)
#define NSEC_PER_USEC UINT64_C(1000)

/* How late sd-event may fire the poll and deadline timers.  Its default,
 * 250 ms, would stretch a short poll interval noticeably. */
#define TASK_TIMER_ACCURACY_USEC (10 * USEC_PER_MSEC)

/* AssumeRole calls that may fail in a row with a transient error (network,
 * HTTP 5xx, Throttling) before the tasks waiting for the role fail.  The
 * backoff of retry.h waits 1.75 to 3.5 s in all. */
#define STS_RETRY_MAX 3

/* Weight of the newest task in the learned task duration. */
#define TASK_DURATION_WEIGHT 0.3

/* When the first poll already finds the ticket, the task may have been
 * faster than the estimate.  The sample shrinks so the estimate can follow
 * faster tasks down. */
#define TASK_DURATION_EARLY_FACTOR 0.9

/* Buckets of the EndUserId table before its first growth. */
#define TASK_HASH_BUCKETS_MIN 64

/* A clock offset smaller than this is not worth a correction. */
#define TASK_CLOCK_OFFSET_MIN_SEC 2

struct task_waiter {
	struct task_waiter *next;
	task_notify_fn notify;
	void *userdata;
	bool watches; /* wants the outcome, not the ticket */
};

struct task {
	struct task_registry *registry;
	struct daemon_config *config; /* the one current when it started */
	const struct ticket_profile *profile; /* belongs to config */
	struct ticket_profile *own_profile;   /* or to the task, or NULL */
	struct task *next, *prev;	      /* every task, oldest first */
	struct task *hash_next; /* in the EndUserId bucket */
	struct task *queue_next, *queue_prev; /* slot or send queue */
	enum task_queue {
		QUEUE_NONE,
		QUEUE_SLOT,
		QUEUE_SEND,
	} queue;
	char *user;
	char *end_user_id;
	char *task_id;
	enum task_state state;
	enum task_wait wait;
	bool has_slot;
	unsigned polls;	   /* API responses received */
	bool handout_logged; /* the "ticket ready" line reported the handout */
	unsigned attempts; /* failed requests in a row */
	int64_t next_interval_ms;
	uint64_t started_usec;
	uint64_t first_sent_usec; /* when the first call was sent */
	uint64_t last_sent_usec;  /* when the newest request was sent */
	uint64_t prev_sent_usec;
	struct api_result result;
	struct task_error error;
	/* The failure that the pending retry follows, for the deadline. */
	struct task_error retried;
	struct http_transfer *transfer;
	sd_event_source *poll_timer; /* the next poll or retry */
	/* A failure that task_fail_later() left for the event loop. */
	const char *deferred_error_name;
	char deferred_message[512];
	sd_event_source *deadline_timer;
	sd_event_source *expiry_timer;
	struct task_waiter *waiters;
};

struct task_queue_list {
	struct task *head, *tail;
};

struct task_registry {
	sd_event *event;
	struct daemon_config *config; /* for new tasks and the limits */
	struct http_client *http;     /* NULL until the first task starts */
	bool http_error_logged;	      /* since the last success */
	struct task *tasks, *tasks_tail;
	unsigned n_tasks;
	unsigned n_finished; /* tasks in TASK_READY or TASK_FAILED */
	/* Tasks by EndUserId, since every call looks one up. */
	struct task **buckets;
	size_t n_buckets; /* a power of two, or 0 before the first task */
	unsigned running;  /* tasks holding a slot */
	unsigned requests; /* HTTP requests in flight */
	struct task_queue_list slot_queue, send_queue;
	struct token_bucket bucket;
	sd_event_source *send_timer; /* wakes the send queue for a token */
	/* Runs the send queue in the next loop iteration, after a request
	 * finished.  A defer source, because a timer due at once would
	 * re-arm the loop's timerfd twice for every finished request. */
	sd_event_source *send_now;
	int64_t clock_offset_sec;    /* server time minus local time */
	struct credentials credentials;
	/* The loop iteration's time when the credential files were last
	 * checked for a rotation. */
	uint64_t credentials_checked_usec;
	/* With ram_role_arn: the role's temporary credentials. */
	struct sts_credentials sts;
	struct http_transfer *sts_transfer; /* AssumeRole in flight */
	/* A transient AssumeRole failure is retried after a backoff. */
	sd_event_source *sts_retry_timer;
	unsigned sts_attempts; /* failed AssumeRole calls in a row */
	/* Set while the registry is freed, so that tasks dropped then start
	 * no others. */
	bool freeing;
	double expected_duration_usec; /* learned; 0 until a task finished */
};

static const char *const task_state_names[] = {
	[TASK_QUEUED] = "queued",
	[TASK_STARTING] = "starting",
	[TASK_RUNNING] = "running",
	[TASK_READY] = "ready",
	[TASK_FAILED] = "failed",
};

static const char *const task_wait_names[] = {
	[TASK_WAIT_NONE] = NULL,
	[TASK_WAIT_TASK_LIMIT] = "task_limit",
	[TASK_WAIT_RATE_LIMIT] = "rate_limit",
	[TASK_WAIT_RETRY] = "retry",
	[TASK_WAIT_CONNECTION] = "connection",
	[TASK_WAIT_ROLE] = "role",
};

static void task_send_call(struct task *task);
static void task_request_send(struct task *task);
static void registry_fill_slots(struct task_registry *registry);
static void registry_pump_sends(struct task_registry *registry);
static uint32_t task_random(void);

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

/*
 * Returns the time now on the clock of task_now(), rather than the time
 * the event loop cached when this iteration began.  The daemon learns
 * from send times how long tasks take.  Those times must not include
 * earlier work of the same iteration, such as loading libcurl and the
 * trusted CAs for the first task (30 to 55 ms on a 2-core Debian 12
 * machine).
 */
static uint64_t task_clock_now(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * USEC_PER_SEC +
	       (uint64_t)now.tv_nsec / NSEC_PER_USEC;
}

static bool task_is_running(const struct task *task)
{
	return task->state == TASK_QUEUED || task->state == TASK_STARTING ||
	       task->state == TASK_RUNNING;
}

/* --- queues ---------------------------------------------------------- */

static struct task_queue_list *queue_list(struct task_registry *registry,
					  enum task_queue queue)
{
	return queue == QUEUE_SLOT ? &registry->slot_queue :
				     &registry->send_queue;
}

static void queue_remove(struct task *task)
{
	struct task_queue_list *list;

	if (task->queue == QUEUE_NONE)
		return;
	list = queue_list(task->registry, task->queue);
	if (task->queue_prev)
		task->queue_prev->queue_next = task->queue_next;
	else
		list->head = task->queue_next;
	if (task->queue_next)
		task->queue_next->queue_prev = task->queue_prev;
	else
		list->tail = task->queue_prev;
	task->queue_next = task->queue_prev = NULL;
	task->queue = QUEUE_NONE;
}

static void queue_append(struct task *task, enum task_queue queue)
{
	struct task_queue_list *list = queue_list(task->registry, queue);

	queue_remove(task);
	task->queue = queue;
	task->queue_prev = list->tail;
	if (list->tail)
		list->tail->queue_next = task;
	else
		list->head = task;
	list->tail = task;
}

/* --- the registry ---------------------------------------------------- */

/* --- lookup by EndUserId -------------------------------------------- */

/* FNV-1a.  The keys are EndUserIds of local accounts that passed the
 * served-user policy, so the table needs no defence against chosen
 * collisions. */
static size_t task_hash(const char *key)
{
	uint64_t hash = UINT64_C(14695981039346656037);

	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		hash ^= *p;
		hash *= UINT64_C(1099511628211);
	}
	return (size_t)hash;
}

/* Doubles the bucket array, keeping about one task per bucket. */
static int task_hash_grow(struct task_registry *registry)
{
	size_t n = registry->n_buckets ? registry->n_buckets * 2 :
					 TASK_HASH_BUCKETS_MIN;
	struct task **buckets = calloc(n, sizeof(struct task *));

	if (!buckets)
		return -ENOMEM;
	for (size_t i = 0; i < registry->n_buckets; i++) {
		struct task *t = registry->buckets[i], *next;

		for (; t; t = next) {
			size_t j = task_hash(t->end_user_id) & (n - 1);

			next = t->hash_next;
			t->hash_next = buckets[j];
			buckets[j] = t;
		}
	}
	free(registry->buckets);
	registry->buckets = buckets;
	registry->n_buckets = n;
	return 0;
}

static int task_hash_add(struct task *task)
{
	struct task_registry *registry = task->registry;
	size_t i;

	if (registry->n_tasks >= registry->n_buckets &&
	    task_hash_grow(registry) < 0 && registry->n_buckets == 0)
		return -ENOMEM;
	i = task_hash(task->end_user_id) & (registry->n_buckets - 1);
	task->hash_next = registry->buckets[i];
	registry->buckets[i] = task;
	return 0;
}

static void task_hash_remove(struct task *task)
{
	struct task_registry *registry = task->registry;
	struct task **p;

	if (registry->n_buckets == 0 || !task->end_user_id)
		return;
	p = &registry->buckets[task_hash(task->end_user_id) &
			       (registry->n_buckets - 1)];
	for (; *p; p = &(*p)->hash_next)
		if (*p == task) {
			*p = task->hash_next;
			return;
		}
}

int task_registry_new(sd_event *event, struct daemon_config *config,
		      struct task_registry **ret_registry, char **ret_error)
{
	struct task_registry *registry;
	int r;

	*ret_error = NULL;
	registry = calloc(1, sizeof(*registry));
	if (!registry)
		return -ENOMEM;
	registry->event = sd_event_ref(event);
	registry->config = config_ref(config);
	/* A burst of one second's worth of requests, at least one. */
	token_bucket_init(&registry->bucket, config->max_requests_per_second,
			  config->max_requests_per_second, task_now(registry));
	r = credentials_load(config, &registry->credentials, ret_error);
	if (r < 0) {
		config_unref(registry->config);
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
	registry->freeing = true;
	while (registry->tasks)
		task_drop(registry->tasks);
	sd_event_source_disable_unref(registry->send_timer);
	sd_event_source_disable_unref(registry->send_now);
	sd_event_source_disable_unref(registry->sts_retry_timer);
	http_transfer_cancel(registry->sts_transfer);
	http_client_free(registry->http);
	credentials_clear(&registry->credentials);
	sts_credentials_clear(&registry->sts);
	config_unref(registry->config);
	sd_event_unref(registry->event);
	free(registry->buckets);
	free(registry);
}

int task_registry_set_config(struct task_registry *registry,
			     struct daemon_config *config, char **ret_error)
{
	struct credentials credentials;
	int r;

	r = credentials_load(config, &credentials, ret_error);
	if (r < 0)
		return r;
	/* Without a client yet, the first task makes one with the new
	 * ca_file. */
	r = registry->http ? http_client_set_ca_file(registry->http,
						     config->ca_file,
						     ret_error) :
			     0;
	if (r < 0) {
		credentials_clear(&credentials);
		return r;
	}
	/* NOTE: tasks in flight keep their configuration, and so their
	 * endpoint, but sign with these credentials.  A reload that moves to
	 * another account's key and endpoint at once fails them. */
	credentials_clear(&registry->credentials);
	registry->credentials = credentials;
	/* A new key or role needs new temporary credentials.  An AssumeRole
	 * call in flight, or waiting to be retried, was signed for the old
	 * ones, and its reply must not be taken for the new role. */
	sts_credentials_clear(&registry->sts);
	http_transfer_cancel(registry->sts_transfer);
	registry->sts_transfer = NULL;
	registry->sts_retry_timer =
		sd_event_source_disable_unref(registry->sts_retry_timer);
	registry->sts_attempts = 0;
	if (config->max_requests_per_second !=
	    registry->config->max_requests_per_second) {
		token_bucket_init(&registry->bucket,
				  config->max_requests_per_second,
				  config->max_requests_per_second,
				  task_now(registry));
		/* The wait for a token was timed at the old rate. */
		registry->send_timer =
			sd_event_source_disable_unref(registry->send_timer);
	}
	config_unref(registry->config);
	registry->config = config_ref(config);
	/* A higher max_tasks frees slots for queued tasks at once. */
	registry_fill_slots(registry);
	registry_pump_sends(registry);
	return 0;
}

void task_registry_count(const struct task_registry *registry,
			 unsigned *ret_total, unsigned *ret_running)
{
	*ret_total = registry->n_tasks;
	*ret_running = registry->n_tasks - registry->n_finished;
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

struct task *task_find(struct task_registry *registry,
		       const char *end_user_id)
{
	size_t i;

	if (registry->n_buckets == 0)
		return NULL;
	i = task_hash(end_user_id) & (registry->n_buckets - 1);
	for (struct task *t = registry->buckets[i]; t; t = t->hash_next)
		if (strcmp(t->end_user_id, end_user_id) == 0)
			return t;
	return NULL;
}

/* --- slots and tokens ------------------------------------------------ */

/* Gives free slots to queued tasks, oldest first. */
static void registry_fill_slots(struct task_registry *registry)
{
	if (registry->freeing)
		return;
	while (registry->slot_queue.head &&
	       registry->running < registry->config->max_tasks) {
		struct task *task = registry->slot_queue.head;

		queue_remove(task);
		task->has_slot = true;
		registry->running++;
		task->state = TASK_STARTING;
		task->wait = TASK_WAIT_NONE;
		task_request_send(task);
	}
}

static void task_release_slot(struct task *task)
{
	struct task_registry *registry = task->registry;

	if (!task->has_slot)
		return;
	task->has_slot = false;
	registry->running--;
	registry_fill_slots(registry);
}

static int registry_on_send_timer(sd_event_source *s, uint64_t usec,
				  void *userdata);

static void task_fail(struct task *task, const char *name, const char *code,
		      const char *request_id, long http_status,
		      const char *format, ...)
	__attribute__((format(printf, 6, 7)));

static time_t registry_time(const struct task_registry *registry)
{
	return time(NULL) + (time_t)registry->clock_offset_sec;
}

/* The role to assume: ram_role_arn, else a credentials file's role. */
static const char *registry_role(const struct task_registry *registry)
{
	return registry->config->ram_role_arn ?
		       registry->config->ram_role_arn :
		       registry->credentials.role_arn;
}

/* Fails every task that waits to send, after AssumeRole failed. */
static void registry_fail_queued(struct task_registry *registry,
				 const char *code, const char *request_id,
				 const char *message)
{
	while (registry->send_queue.head)
		task_fail(registry->send_queue.head, CLOUDAPP_ERROR_CLOUD, code,
			  request_id, 0, "cannot assume the RAM role: %s",
			  message);
}

static void task_fail_later(struct task *task, const char *name,
			    const char *format, ...)
	__attribute__((format(printf, 3, 4)));

/* The same as registry_fail_queued(), from the event loop, for callers
 * that may still hold a queued task. */
static void registry_fail_queued_later(struct task_registry *registry,
				       const char *message)
{
	while (registry->send_queue.head)
		task_fail_later(registry->send_queue.head, CLOUDAPP_ERROR_CLOUD,
				"cannot assume the RAM role: %s", message);
}

static int registry_on_sts_retry(sd_event_source *s, uint64_t usec,
				 void *userdata)
{
	struct task_registry *registry = userdata;

	registry->sts_retry_timer =
		sd_event_source_disable_unref(registry->sts_retry_timer);
	registry_pump_sends(registry);
	return 0;
}

/*
 * Arms the retry of a failed AssumeRole call when retry classifies it as
 * transient and fewer than STS_RETRY_MAX calls failed in a row.  The
 * tasks waiting for the role stay queued meanwhile.  Returns false when
 * the failure is final.
 */
static bool registry_retry_sts(struct task_registry *registry,
			       enum retry_class retry, const char *message)
{
	int64_t wait;

	if ((retry != RETRY_BACKOFF && retry != RETRY_THROTTLED) ||
	    registry->sts_attempts >= STS_RETRY_MAX)
		return false;
	wait = retry_backoff_ms(registry->sts_attempts, task_random());
	if (sd_event_add_time_relative(registry->event,
				       &registry->sts_retry_timer,
				       CLOCK_MONOTONIC,
				       (uint64_t)wait * USEC_PER_MSEC,
				       TASK_TIMER_ACCURACY_USEC,
				       registry_on_sts_retry, registry) < 0)
		return false;
	registry->sts_attempts++;
	log_warning("AssumeRole of %s failed: %s; retry %u in %.1f s",
		    registry_role(registry), message, registry->sts_attempts,
		    (double)wait / 1000);
	return true;
}

static void registry_on_sts_response(const struct http_response *response,
				     void *userdata)
{
	struct task_registry *registry = userdata;
	struct sts_credentials fresh;
	struct api_result result = { 0 };
	char message[1024], *error = NULL;
	int r;

	registry->sts_transfer = NULL;
	if (response->curl_code != 0) {
		snprintf(message, sizeof(message), "cannot reach %s: %s",
			 registry->config->sts_endpoint, response->error);
		if (!retry_tls_trust_error(response->curl_code) &&
		    registry_retry_sts(registry,
				       retry_classify(response->curl_code, 0,
						      NULL),
				       message))
			return;
		log_error("AssumeRole failed: %s", message);
		registry->sts_attempts = 0;
		registry_fail_queued(registry, NULL, NULL, message);
		return;
	}
	r = sts_response_parse(response->status, response->body,
			       response->body_len, registry_time(registry),
			       &fresh, &result, &error);
	if (r != 0) {
		struct log_ids ids = { .request_id = result.request_id,
				       .cloud_error = result.code };

		snprintf(message, sizeof(message), "%s",
			 r == 1 ? (result.message && *result.message ?
					   result.message :
					   "AssumeRole failed") :
				  (error ? error : strerror(-r)));
		cloudapp_utf8_trim(message);
		/* Only an error reply (r == 1) can be transient. */
		if (r != 1 ||
		    !registry_retry_sts(registry,
					retry_classify(0, response->status,
						       result.code),
					message)) {
			log_ids(LOG_ERR, &ids, "AssumeRole of %s failed: %s",
				registry_role(registry), message);
			registry->sts_attempts = 0;
			registry_fail_queued(registry, result.code,
					     result.request_id, message);
		}
		api_result_clear(&result);
		free(error);
		return;
	}
	sts_credentials_clear(&registry->sts);
	registry->sts = fresh;
	registry->sts_attempts = 0;
	log_info("assumed the RAM role %s, temporary key valid for %lld s",
		 registry_role(registry),
		 (long long)(fresh.expiration - fresh.obtained));
	registry_pump_sends(registry);
}

/* Starts AssumeRole unless it is already in flight. */
static void registry_assume_role(struct task_registry *registry)
{
	const struct credentials *key = &registry->credentials;
	struct api_credentials credentials = {
		.access_key_id = key->access_key_id,
		.access_key_secret = key->access_key_secret,
		.security_token = key->security_token,
		.signature_v2 = false,
	};
	struct api_request request;
	struct http_request http = { 0 };
	int r;

	if (registry->sts_transfer || registry->sts_retry_timer)
		return;
	r = sts_request_build(registry->config, registry_role(registry),
			      key->role_session_name ?
				      key->role_session_name :
				      registry->config->role_session_name,
			      &credentials, registry_time(registry), &request);
	if (r < 0) {
		registry_fail_queued_later(registry,
					   "cannot build the AssumeRole request");
		return;
	}
	http.url = request.url;
	http.headers = (const char *const *)request.headers;
	http.body = request.body;
	http.body_len = request.body_len;
	http.timeout_ms = (long)registry->config->request_timeout_ms;
	r = http_client_post(registry->http, &http, registry_on_sts_response,
			     registry, &registry->sts_transfer);
	api_request_clear(&request);
	if (r < 0)
		registry_fail_queued_later(registry,
					   "cannot start the AssumeRole request");
}

/*
 * With a RAM role, returns true when the temporary credentials can sign
 * now.  Renews them ahead of their expiry, and sends nothing while there
 * are none.
 */
static bool registry_role_ready(struct task_registry *registry)
{
	time_t now = registry_time(registry);

	if (!registry_role(registry))
		return true;
	if (sts_credentials_fresh(&registry->sts, now))
		return true;
	registry_assume_role(registry);
	return sts_credentials_valid(&registry->sts, now);
}

/*
 * Sends queued requests while tokens last, oldest first.  At most
 * HTTP_CONNECTIONS_PER_HOST requests are in flight: handing curl more
 * would only queue them inside curl, each with its own buffers.
 */
static void registry_pump_sends(struct task_registry *registry)
{
	if (registry->freeing)
		return;
	if (registry->send_queue.head && !registry_role_ready(registry))
		return;
	while (registry->send_queue.head &&
	       registry->requests < HTTP_CONNECTIONS_PER_HOST) {
		struct task *task = registry->send_queue.head;
		uint64_t now = task_now(registry);
		uint64_t wait = token_bucket_take(&registry->bucket, now);

		if (wait > 0) {
			if (!registry->send_timer &&
			    sd_event_add_time(registry->event,
					      &registry->send_timer,
					      CLOCK_MONOTONIC, now + wait,
					      USEC_PER_MSEC,
					      registry_on_send_timer,
					      registry) < 0)
				log_error("cannot arm the request rate timer");
			return;
		}
		queue_remove(task);
		task->wait = TASK_WAIT_NONE;
		task_send_call(task);
	}
}

static int registry_on_send_timer(sd_event_source *s, uint64_t usec,
				  void *userdata)
{
	struct task_registry *registry = userdata;

	sd_event_source_disable_unref(registry->send_timer);
	registry->send_timer = NULL;
	registry_pump_sends(registry);
	return 0;
}

static int registry_on_send_now(sd_event_source *s, void *userdata)
{
	registry_pump_sends(userdata);
	return 0;
}

/* Counts a finished request and lets the next queued one go.  The pump
 * runs from the event loop, not inside the response callback. */
static void task_request_done(struct task_registry *registry)
{
	int r;

	registry->requests--;
	if (registry->freeing || !registry->send_queue.head ||
	    registry->send_timer)
		return;
	if (registry->send_now)
		r = sd_event_source_set_enabled(registry->send_now,
						SD_EVENT_ONESHOT);
	else
		r = sd_event_add_defer(registry->event, &registry->send_now,
				       registry_on_send_now, registry);
	if (r < 0)
		log_error("cannot schedule the next queued request");
}

static void task_cancel_transfer(struct task *task)
{
	if (!task->transfer)
		return;
	http_transfer_cancel(task->transfer);
	task->transfer = NULL;
	task_request_done(task->registry);
}

/* Returns what the send queue waits for, after registry_pump_sends()
 * stopped. */
static enum task_wait registry_send_wait(const struct task_registry *registry)
{
	if (registry_role(registry) &&
	    !sts_credentials_valid(&registry->sts, registry_time(registry)))
		return TASK_WAIT_ROLE;
	if (registry->requests >= HTTP_CONNECTIONS_PER_HOST)
		return TASK_WAIT_CONNECTION;
	return TASK_WAIT_RATE_LIMIT;
}

/*
 * Queues the task's next API request behind those already waiting.  A
 * request that cannot start fails the task through task_fail_later(), so
 * the task is still valid when this returns.
 */
static void task_request_send(struct task *task)
{
	struct task_registry *registry = task->registry;

	queue_append(task, QUEUE_SEND);
	registry_pump_sends(registry);
	if (task->queue == QUEUE_SEND)
		task->wait = registry_send_wait(registry);
}

/* --- freeing and finishing ------------------------------------------- */

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

	task_hash_remove(task);
	registry->n_tasks--;
	if (!task_is_running(task))
		registry->n_finished--;
	if (task->prev)
		task->prev->next = task->next;
	else
		registry->tasks = task->next;
	if (task->next)
		task->next->prev = task->prev;
	else
		registry->tasks_tail = task->prev;

	queue_remove(task);
	task_cancel_transfer(task);
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
	task_error_clear(&task->retried);
	free(task->user);
	free(task->end_user_id);
	free(task->task_id);
	config_unref(task->config);
	if (task->own_profile) {
		profile_clear(task->own_profile);
		free(task->own_profile);
	}
	/* Released last: it may start the next queued task. */
	if (task->has_slot) {
		registry->running--;
		free(task);
		registry_fill_slots(registry);
		return;
	}
	free(task);
}

void task_consume(struct task *task)
{
	if (task->state == TASK_READY && !task->handout_logged) {
		struct log_ids ids = task_log_ids(task, NULL, NULL);

		log_ids(LOG_INFO, &ids, "ticket handed out and wiped");
	}
	task_drop(task);
}

/* Tells every waiter about progress; the final call also removes them. */
/* True when a waiter takes the result, as GetTicket does. */
static bool task_has_takers(const struct task *task)
{
	for (const struct task_waiter *w = task->waiters; w; w = w->next)
		if (!w->watches)
			return true;
	return false;
}

static int task_on_expiry(sd_event_source *s, uint64_t usec, void *userdata);

/* Keeps a finished result for pickup_timeout; false if task was dropped. */
static bool task_keep_for_pickup(struct task *task)
{
	struct task_registry *registry = task->registry;
	uint64_t expiry = task_now(registry) +
			  (uint64_t)task->config->pickup_timeout_ms *
				  USEC_PER_MSEC;

	if (sd_event_add_time(registry->event, &task->expiry_timer,
			      CLOCK_MONOTONIC, expiry, 0, task_on_expiry,
			      task) < 0) {
		log_error("cannot arm the pickup timer, dropping the result "
			  "now");
		task_drop(task);
		return false;
	}
	return true;
}

/*
 * Tells every waiter about progress; the final call also removes them.
 * A result some waiter takes is consumed; one only watched stays for
 * pickup.
 */
static void task_notify(struct task *task)
{
	bool final = task->state == TASK_READY || task->state == TASK_FAILED;
	struct task_waiter *w = task->waiters, *next;
	bool taken = task_has_takers(task);

	if (final)
		task->waiters = NULL;
	for (; w; w = next) {
		next = w->next;
		w->notify(task, w->userdata);
		if (final)
			free(w);
	}
	if (final && taken)
		task_consume(task);
	else if (final)
		task_keep_for_pickup(task);
}

static int task_on_expiry(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct task *task = userdata;
	struct log_ids ids = task_log_ids(task, NULL, NULL);

	log_ids(LOG_NOTICE, &ids, "%s not picked up within %lld s, wiped",
		task->state == TASK_READY ? "ticket" : "error",
		(long long)task->config->pickup_timeout_ms / 1000);
	task_drop(task);
	return 0;
}

/* Ends a task.  Without a waiter the result stays for pickup. */
static void task_finish(struct task *task, enum task_state state)
{
	if (task_is_running(task))
		task->registry->n_finished++;
	task->state = state;
	task->wait = TASK_WAIT_NONE;
	queue_remove(task);
	sd_event_source_disable_unref(task->poll_timer);
	task->poll_timer = NULL;
	sd_event_source_disable_unref(task->deadline_timer);
	task->deadline_timer = NULL;
	task_release_slot(task);

	if (!task->waiters) {
		task_keep_for_pickup(task);
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

static int task_on_deferred_failure(sd_event_source *s, uint64_t usec,
				    void *userdata)
{
	struct task *task = userdata;

	sd_event_source_disable_unref(task->poll_timer);
	task->poll_timer = NULL;
	task_fail(task, task->deferred_error_name, NULL, NULL, 0, "%s",
		  task->deferred_message);
	return 0;
}

/*
 * Fails the task on the next event loop iteration rather than now.  The
 * send pump and the code that queues a request still use the task after
 * sending, and task_fail() may free it when a waiter takes the error.
 * When even the timer cannot be armed, the task's deadline ends it.
 */
static void task_fail_later(struct task *task, const char *name,
			    const char *format, ...)
{
	struct log_ids ids = task_log_ids(task, NULL, NULL);
	va_list ap;

	va_start(ap, format);
	vsnprintf(task->deferred_message, sizeof(task->deferred_message),
		  format, ap);
	va_end(ap);
	task->deferred_error_name = name;
	queue_remove(task);
	task->wait = TASK_WAIT_NONE;
	sd_event_source_disable_unref(task->poll_timer);
	task->poll_timer = NULL;
	if (sd_event_add_time(task->registry->event, &task->poll_timer,
			      CLOCK_MONOTONIC, 0, 0, task_on_deferred_failure,
			      task) < 0)
		log_ids(LOG_ERR, &ids, "%s; the task ends at its deadline",
			task->deferred_message);
}

/* --- polling --------------------------------------------------------- */

static int task_on_poll_timer(sd_event_source *s, uint64_t usec,
			      void *userdata)
{
	struct task *task = userdata;

	sd_event_source_disable_unref(task->poll_timer);
	task->poll_timer = NULL;
	task_request_send(task);
	/* Tell the waiters when the request has to wait in the queue. */
	if (task->queue == QUEUE_SEND)
		task_notify(task);
	return 0;
}

static void task_schedule(struct task *task, int64_t wait_ms)
{
	struct task_registry *registry = task->registry;
	uint64_t when = task_now(registry) + (uint64_t)wait_ms * USEC_PER_MSEC;

	if (sd_event_add_time(registry->event, &task->poll_timer,
			      CLOCK_MONOTONIC, when, TASK_TIMER_ACCURACY_USEC,
			      task_on_poll_timer, task) < 0)
		task_fail_later(task, CLOUDAPP_ERROR_INTERNAL,
				"cannot arm the poll timer");
}

/*
 * Picks the wait before the next poll.  The first poll goes out when
 * tasks have recently taken to finish, so a typical ticket costs two
 * calls.  Later waits start at poll_interval and grow by poll_backoff up
 * to poll_interval_max.
 */
static int64_t task_next_poll_ms(struct task *task)
{
	const struct daemon_config *config = task->config;
	int64_t wait = task->next_interval_ms;

	if (task->polls == 1) {
		double expected = task->registry->expected_duration_usec;
		uint64_t elapsed = task_now(task->registry) -
				   task->first_sent_usec;

		task->next_interval_ms = config->poll_interval_ms;
		wait = config->poll_interval_ms;
		if (expected > (double)elapsed)
			wait = (int64_t)((expected - (double)elapsed) /
					 USEC_PER_MSEC);
	} else {
		task->next_interval_ms =
			(int64_t)((double)task->next_interval_ms *
				  config->poll_backoff);
	}
	if (task->next_interval_ms > config->poll_interval_max_ms)
		task->next_interval_ms = config->poll_interval_max_ms;
	if (wait < config->poll_interval_ms)
		wait = config->poll_interval_ms;
	if (wait > config->poll_interval_max_ms)
		wait = config->poll_interval_max_ms;
	return wait;
}

/*
 * Learns how long tasks take.  When an earlier poll still saw Running,
 * the task finished between that poll and the last one, and the midpoint
 * is the sample.  When the first poll found the ticket, the task took at
 * most that long, and a slightly shorter time is the sample.
 */
static void task_learn_duration(struct task *task)
{
	struct task_registry *registry = task->registry;
	double sample;

	if (task->polls <= 2)
		sample = (double)(task->last_sent_usec -
				  task->first_sent_usec) *
			 TASK_DURATION_EARLY_FACTOR;
	else
		sample = ((double)task->prev_sent_usec +
			  (double)task->last_sent_usec) / 2 -
			 (double)task->first_sent_usec;
	if (registry->expected_duration_usec == 0)
		registry->expected_duration_usec = sample;
	else
		registry->expected_duration_usec =
			(1 - TASK_DURATION_WEIGHT) *
				registry->expected_duration_usec +
			TASK_DURATION_WEIGHT * sample;
}

static void task_on_success(struct task *task, struct api_result *result)
{
	const char *status = result->task_status ? result->task_status : "";
	struct log_ids ids = task_log_ids(task, result->request_id, NULL);

	task->attempts = 0;
	task_error_clear(&task->retried);
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
		if (strlen(result->ticket) > API_TICKET_MAX)
			return task_fail(task, CLOUDAPP_ERROR_CLOUD, NULL,
					 result->request_id,
					 result->http_status,
					 "the Ticket is %zu bytes long, more "
					 "than the %zu this daemon accepts",
					 strlen(result->ticket), API_TICKET_MAX);
		/* Clients reject a reply that is not valid UTF-8. */
		if (!cloudapp_utf8_valid(result->ticket,
					 strlen(result->ticket)))
			return task_fail(task, CLOUDAPP_ERROR_CLOUD, NULL,
					 result->request_id,
					 result->http_status,
					 "the Ticket is not valid UTF-8");
		/* A waiting GetTicket takes the ticket within task_finish(),
		 * and one line then reports both. */
		task->handout_logged = task_has_takers(task);
		log_ids(LOG_INFO, &ids,
			"ticket ready after %u calls, %zu bytes, in %.1f s%s",
			task->polls, strlen(result->ticket),
			(double)(task_now(task->registry) -
				 task->started_usec) /
				1e6,
			task->handout_logged ? "; handed out and wiped" : "");
		task_learn_duration(task);
		api_result_clear(&task->result);
		task->result = *result;
		memset(result, 0, sizeof(*result));
		return task_finish(task, TASK_READY);
	}
	if (strcmp(status, "Failed") == 0)
		return task_fail(task, CLOUDAPP_ERROR_TASK_FAILED, NULL,
				 result->request_id, result->http_status,
				 "the cloud task for EndUserId %s ended "
				 "with TaskStatus Failed",
				 task->end_user_id);

	log_ids(LOG_DEBUG, &ids, "task %s, call %u",
		*status ? status : "without status", task->polls);
	/* This line is for debugging only, because "starting ticket task" and
	 * "ticket ready" already log each task at info level, the second with
	 * the TaskId. */
	if (task->state == TASK_STARTING) {
		log_ids(LOG_DEBUG, &ids, "cloud task started");
		task->state = TASK_RUNNING;
	}
	task_schedule(task, task_next_poll_ms(task));
	task_notify(task);
}

/* --- retries --------------------------------------------------------- */

/* A failed call, as retry decisions and error reports need it. */
struct task_failure {
	const char *error_name; /* NULL for CLOUDAPP_ERROR_CLOUD */
	enum retry_class retry;
	const char *code;
	const char *request_id;
	long http_status;
	const struct http_response *response;
	char message[1024];
};

static uint32_t task_random(void)
{
	uint32_t value = 0;

	/* Without randomness the jitter is lost, not the retry. */
	if (RAND_bytes((unsigned char *)&value, sizeof(value)) != 1)
		value = (uint32_t)time(NULL);
	return value;
}

/*
 * Corrects the clock offset from the response's Date header.  Returns
 * true when the offset changed enough that a retry can succeed.
 */
static bool task_correct_clock(struct task *task,
			       const struct http_response *response)
{
	struct task_registry *registry = task->registry;
	int64_t offset;

	if (!retry_clock_offset(response->date, time(NULL), &offset))
		return false;
	if (llabs(offset - registry->clock_offset_sec) <
	    TASK_CLOCK_OFFSET_MIN_SEC)
		return false;
	log_warning("the endpoint's clock is %lld s %s this host's (from its "
		    "Date header); signing with corrected timestamps until the "
		    "daemon restarts; synchronize this host's clock with NTP",
		    llabs(offset), offset > 0 ? "ahead of" : "behind");
	registry->clock_offset_sec = offset;
	return true;
}

/* Returns the wait before retrying, or -1 when the failure is final. */
static int64_t task_retry_wait_ms(struct task *task,
				  const struct task_failure *failure)
{
	int64_t wait;

	switch (failure->retry) {
	case RETRY_NONE:
		return -1;
	case RETRY_CLOCK:
		return task_correct_clock(task, failure->response) ? 0 : -1;
	case RETRY_THROTTLED:
		if (failure->response->rate_limit &&
		    retry_time_left_ms(failure->response->rate_limit, &wait))
			return wait;
		return retry_backoff_ms(task->attempts, task_random());
	case RETRY_BACKOFF:
		return retry_backoff_ms(task->attempts, task_random());
	}
	return -1;
}

/* True for the Codes that point at the key or the token, so that the
 * error names where they came from. */
static bool task_credential_error(const char *code)
{
	static const char *const prefixes[] = {
		"SignatureDoesNotMatch", "InvalidAccessKeyId",
		"InvalidSecurityToken",	 "MissingSecurityToken",
	};

	for (size_t i = 0; code && i < sizeof(prefixes) / sizeof(prefixes[0]);
	     i++)
		if (strncmp(code, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	return false;
}

/* Keeps a failure that will be retried, so that a deadline reached
 * before the retry succeeds reports it rather than a bare timeout. */
static void task_remember_failure(struct task *task,
				  const struct task_failure *failure)
{
	struct task_error *retried = &task->retried;

	task_error_clear(retried);
	retried->name = failure->error_name ? failure->error_name :
					      CLOUDAPP_ERROR_CLOUD;
	retried->message = strdup(failure->message);
	retried->code = failure->code ? strdup(failure->code) : NULL;
	retried->request_id =
		failure->request_id ? strdup(failure->request_id) : NULL;
	retried->http_status = failure->http_status;
	/* When a copy fails, the deadline reports a plain timeout. */
	if (!retried->message ||
	    (failure->code && !retried->code) ||
	    (failure->request_id && !retried->request_id))
		task_error_clear(retried);
}

static void task_on_failure(struct task *task,
			    struct task_failure *failure)
{
	struct task_registry *registry = task->registry;
	struct log_ids ids = task_log_ids(task, failure->request_id,
					  failure->code);
	int64_t wait;

	/* snprintf() may have cut the cloud's Message inside a character. */
	cloudapp_utf8_trim(failure->message);
	wait = task_retry_wait_ms(task, failure);
	uint64_t deadline = task->started_usec +
			    (uint64_t)task->config->ticket_timeout_ms *
				    USEC_PER_MSEC;

	if (wait >= 0 &&
	    task_now(registry) + (uint64_t)wait * USEC_PER_MSEC < deadline) {
		task->attempts++;
		log_ids(LOG_WARNING, &ids, "%s; retry %u in %.1f s",
			failure->message, task->attempts, (double)wait / 1000);
		task_remember_failure(task, failure);
		task->wait = TASK_WAIT_RETRY;
		task_schedule(task, wait);
		task_notify(task);
		return;
	}
	task_fail(task,
		  failure->error_name ? failure->error_name :
					CLOUDAPP_ERROR_CLOUD,
		  failure->code, failure->request_id, failure->http_status,
		  "%s%s%s%s",
		  failure->message,
		  task->attempts ? " (after retries)" : "",
		  task_credential_error(failure->code) ? "; the key comes from " :
							 "",
		  task_credential_error(failure->code) ?
			  registry->credentials.source :
			  "");
}

static void task_on_response(const struct http_response *response,
			     void *userdata)
{
	struct task *task = userdata;
	struct task_failure failure = { .response = response };
	struct api_result result;
	char *error = NULL;
	int r;

	task->transfer = NULL;
	task->polls++;
	task_request_done(task->registry);
	if (response->curl_code != 0) {
		failure.retry = retry_classify(response->curl_code, 0, NULL);
		if (retry_tls_trust_error(response->curl_code)) {
			failure.error_name = CLOUDAPP_ERROR_UNTRUSTED_ENDPOINT;
			snprintf(failure.message, sizeof(failure.message),
				 "cannot verify the TLS certificate of %s: %s; "
				 "check ca_file and that the endpoint's host "
				 "name is the one in its certificate",
				 task->config->endpoint, response->error);
		} else {
			snprintf(failure.message, sizeof(failure.message),
				 "cannot reach %s: %s",
				 task->config->endpoint, response->error);
		}
		return task_on_failure(task, &failure);
	}

	r = api_result_parse(response->status, response->body,
			     response->body_len, &result, &error);
	if (r < 0) {
		failure.retry = retry_classify(0, response->status, NULL);
		failure.http_status = response->status;
		snprintf(failure.message, sizeof(failure.message),
			 "invalid response from %s: %s",
			 task->config->endpoint,
			 error ? error : strerror(-r));
		free(error);
		return task_on_failure(task, &failure);
	}
	if (r == 1) {
		failure.retry = retry_classify(0, result.http_status,
					       result.code);
		failure.code = result.code;
		failure.request_id = result.request_id;
		failure.http_status = result.http_status;
		snprintf(failure.message, sizeof(failure.message),
			 "GetConnectionTicket failed with HTTP %ld: %s%s",
			 result.http_status,
			 *result.message ? result.message :
			 result.code     ? result.code :
					   "no message",
			 /* Each request has a fresh nonce, so this is the
			  * transport's resend, not a signing fault. */
			 result.code &&
					 strcmp(result.code,
						"SignatureNonceUsed") == 0 ?
				 "; the endpoint closed a kept-alive "
				 "connection before replying and libcurl sent "
				 "the same request again, so check the network "
				 "path to the endpoint" :
				 "");
		task_on_failure(task, &failure);
		api_result_clear(&result);
		return;
	}
	task_on_success(task, &result);
	api_result_clear(&result);
}

/*
 * Picks up credentials that an outside agent rotated in their files.  The
 * files are checked once per event loop iteration, because all requests
 * sent in one iteration race with a rotation in the same way.
 */
static void task_refresh_credentials(struct task_registry *registry)
{
	uint64_t now = task_now(registry);
	char *error = NULL;
	int r;

	if (now == registry->credentials_checked_usec)
		return;
	registry->credentials_checked_usec = now;
	r = credentials_refresh(registry->config, &registry->credentials,
				&error);
	if (r > 0)
		log_info("reloaded the credentials from %s",
			 registry->credentials.source);
	else if (r < 0)
		log_warning("the credential files changed but cannot be read, "
			    "keeping the previous credentials: %s",
			    error ? error : strerror(-r));
	free(error);
}

static void task_send_call(struct task *task)
{
	struct task_registry *registry = task->registry;
	const struct daemon_config *config = task->config;
	struct api_credentials credentials;
	struct api_ticket_call call = {
		.product_type = task->profile->product_type,
		.end_user_id = task->end_user_id,
		.app_id = task->profile->app_id,
		.task_id = task->task_id,
		.profile = task->profile,
	};
	struct api_request request;
	struct http_request http = { 0 };
	int r;

	task_refresh_credentials(registry);
	credentials = (struct api_credentials){
		.access_key_id = registry->credentials.access_key_id,
		.access_key_secret = registry->credentials.access_key_secret,
		.security_token = registry->credentials.security_token,
		.signature_v2 = task->config->signature_v2,
	};
	if (registry_role(registry)) {
		credentials.access_key_id = registry->sts.access_key_id;
		credentials.access_key_secret = registry->sts.access_key_secret;
		credentials.security_token = registry->sts.security_token;
	}

	/* Every request, retries included, gets a fresh date and nonce. */
	r = api_request_build(config->endpoint, config->endpoint_host,
			      &credentials, &call,
			      time(NULL) + (time_t)registry->clock_offset_sec,
			      &request);
	if (r < 0)
		return task_fail_later(task, CLOUDAPP_ERROR_INTERNAL,
				       "cannot build the request: %s",
				       strerror(-r));

	http.url = request.url;
	http.headers = (const char *const *)request.headers;
	http.body = request.body;
	http.body_len = request.body_len;
	http.timeout_ms = (long)config->request_timeout_ms;
	r = http_client_post(registry->http, &http, task_on_response, task,
			     &task->transfer);
	api_request_clear(&request);
	if (r < 0)
		return task_fail_later(task, CLOUDAPP_ERROR_INTERNAL,
				       "cannot start the request: %s",
				       strerror(-r));
	registry->requests++;
	task->prev_sent_usec = task->last_sent_usec;
	task->last_sent_usec = task_clock_now();
	if (!task->first_sent_usec)
		task->first_sent_usec = task->last_sent_usec;
}

/* Names, for the timeout message, the queue a task was still waiting in. */
static const char *task_deadline_wait_text(const struct task *task)
{
	if (task->state == TASK_QUEUED)
		return ", still queued for a task slot";
	if (task->queue != QUEUE_SEND)
		return "";
	if (task->wait == TASK_WAIT_RATE_LIMIT)
		return ", still queued for the request rate limit, "
		       "max_requests_per_second";
	if (task->wait == TASK_WAIT_CONNECTION)
		return ", still queued for a connection to the endpoint";
	if (task->wait == TASK_WAIT_ROLE)
		return ", still waiting for the RAM role's temporary "
		       "credentials";
	return "";
}

static int task_on_deadline(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct task *task = userdata;
	struct task_error retried = task->retried;

	task_cancel_transfer(task);
	if (task->attempts > 0 && retried.message) {
		/* task_fail() copies the strings, so this copy is freed
		 * below. */
		memset(&task->retried, 0, sizeof(task->retried));
		task_fail(task, retried.name, retried.code, retried.request_id,
			  retried.http_status,
			  "%s (%u %s failed before ticket_timeout, %lld s, "
			  "ran out)",
			  retried.message, task->attempts,
			  task->attempts == 1 ? "attempt" : "attempts",
			  (long long)task->config->ticket_timeout_ms / 1000);
		task_error_clear(&retried);
		return 0;
	}
	task_fail(task, CLOUDAPP_ERROR_TIMEOUT, NULL, NULL, 0,
		  "no ticket for EndUserId %s within %lld s (%u calls%s)",
		  task->end_user_id,
		  (long long)task->config->ticket_timeout_ms / 1000,
		  task->polls, task_deadline_wait_text(task));
	return 0;
}

/* --- starting and waiting -------------------------------------------- */

/*
 * Creates the HTTP client, which loads libcurl and the trusted CAs, when
 * the first task starts.  A daemon that replies only to status calls, or
 * exits idle before any task, then never maps libcurl.  A failure is
 * logged once until a later attempt succeeds, since every login would
 * repeat it.
 */
static int registry_open_http(struct task_registry *registry,
			      char **ret_error)
{
	int r;

	*ret_error = NULL;
	if (registry->http)
		return 0;
	r = http_client_new(registry->event, registry->config->ca_file,
			    &registry->http, ret_error);
	if (r < 0) {
		if (!registry->http_error_logged)
			log_error("cannot send requests to the cloud: %s",
				  *ret_error ? *ret_error : strerror(-r));
		registry->http_error_logged = true;
		return r;
	}
	registry->http_error_logged = false;
	log_debug("loaded libcurl and the trusted CAs for the first task");
	return 0;
}

static struct task *task_new(struct task_registry *registry,
			     const char *user, const char *end_user_id,
			     const struct ticket_profile *profile)
{
	struct task *task = calloc(1, sizeof(*task));

	if (!task)
		return NULL;
	task->registry = registry;
	task->config = config_ref(registry->config);
	task->profile = profile;
	task->user = strdup(user);
	task->end_user_id = strdup(end_user_id);
	task->started_usec = task_now(registry);
	task->prev = registry->tasks_tail;
	if (task->prev)
		task->prev->next = task;
	else
		registry->tasks = task;
	registry->tasks_tail = task;
	registry->n_tasks++;
	if (!task->user || !task->end_user_id) {
		task_drop(task);
		return NULL;
	}
	if (task_hash_add(task) < 0) {
		task_drop(task);
		return NULL;
	}
	return task;
}

int task_start(struct task_registry *registry, const char *user,
	       const char *end_user_id, const struct ticket_profile *profile,
	       struct task **ret_task, bool *ret_started, char **ret_error)
{
	struct task *task = task_find(registry, end_user_id);
	struct log_ids ids;
	uint64_t deadline;
	int r;

	*ret_started = false;
	*ret_error = NULL;
	if (task && task->state != TASK_FAILED) {
		*ret_task = task;
		return 0;
	}
	r = registry_open_http(registry, ret_error);
	if (r < 0)
		return r;
	if (task)
		task_drop(task);

	task = task_new(registry, user, end_user_id, profile);
	if (!task)
		return -ENOMEM;
	deadline = task->started_usec +
		   (uint64_t)task->config->ticket_timeout_ms * USEC_PER_MSEC;
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
	task->state = TASK_QUEUED;
	task->wait = TASK_WAIT_TASK_LIMIT;
	queue_append(task, QUEUE_SLOT);
	/* May send the first call at once, which may fail the task; the
	 * result then waits for pickup like any other. */
	registry_fill_slots(registry);
	if (task->state == TASK_QUEUED)
		log_ids(LOG_INFO, &ids,
			"%u cloud tasks running, the most allowed; queued",
			registry->running);
	*ret_task = task;
	*ret_started = true;
	return 0;
}

int task_start_owned(struct task_registry *registry, const char *user,
		     const char *end_user_id, struct ticket_profile *profile,
		     struct task **ret_task, bool *ret_started,
		     char **ret_error)
{
	int r = task_start(registry, user, end_user_id, profile, ret_task,
			   ret_started, ret_error);

	if (r == 0 && *ret_started) {
		(*ret_task)->own_profile = profile;
		return 0;
	}
	/* Joined a running task, or failed: the profile is not needed. */
	profile_clear(profile);
	free(profile);
	return r;
}

void task_cancel(struct task *task, const char *reason)
{
	if (!task->waiters) {
		task_drop(task);
		return;
	}
	task_cancel_transfer(task);
	task_fail(task, CLOUDAPP_ERROR_NO_TICKET, NULL, NULL, 0, "%s", reason);
}

struct task_waiter *task_add_waiter(struct task *task, task_notify_fn notify,
				    void *userdata, bool watches)
{
	struct task_waiter *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->notify = notify;
	w->userdata = userdata;
	w->watches = watches;
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

/* --- accessors ------------------------------------------------------- */

enum task_state task_get_state(const struct task *task)
{
	return task->state;
}

const char *task_state_name(enum task_state state)
{
	return task_state_names[state];
}

const char *task_get_wait_name(const struct task *task)
{
	return task_wait_names[task->wait];
}

unsigned task_get_queue_position(const struct task *task)
{
	unsigned position = 1;

	if (task->queue == QUEUE_NONE)
		return 0;
	for (const struct task *t = task->queue_prev; t; t = t->queue_prev)
		position++;
	return position;
}

const char *task_get_user(const struct task *task)
{
	return task->user;
}

const struct credentials *
task_registry_credentials(const struct task_registry *registry)
{
	return &registry->credentials;
}

const struct ticket_profile *task_get_profile(const struct task *task)
{
	return task->profile;
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
