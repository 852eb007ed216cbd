/*
 * The socket server.  Each connection handles one call at a time: a
 * GetTicket call that waits for the cloud parks the connection on its
 * task, and the next call is read only after the final reply.  A malformed
 * or oversized message gets an InvalidMessage error and the connection is
 * closed, without disturbing other clients.
 */

#include "config.h"

#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "credentials.h"
#include "log.h"
#include "mapping.h"
#include "peer.h"
#include "policy.h"
#include "protocol.h"
#include "ratelimit.h"
#include "util.h"

struct listener {
	struct listener *next;
	int fd;
	sd_event_source *source;
};

struct connection {
	struct server *server;
	struct connection *next, *prev;
	int fd;
	sd_event_source *source;
	struct peer peer;
	struct cloudapp_msgbuf input;
	char *output;
	size_t output_len, output_sent;
	bool close_after_output;
	bool draining; /* the final error was sent; discarding input */
	/* A GetTicket call waiting for its task, or a StartTicket call with
	 * "wait" watching it. */
	struct task *task;
	struct task_waiter *waiter;
	bool watching;
	bool more;
	bool input_paused; /* input arrived while a call waits */
	sd_event_source *resume; /* reads the next call after a parked one */
	sd_event_source *idle_timer; /* closes a connection left unused */
};

/* Limits a warning that any local user can trigger at will to one per
 * SERVER_WARNING_INTERVAL_USEC, so that a flood of rejected calls cannot
 * flood the journal, and counts the warnings left out. */
struct log_throttle {
	uint64_t last_usec;
	unsigned suppressed;
};

struct server {
	sd_event *event;
	const struct daemon_config *config;
	struct task_registry *registry;
	struct listener *listeners;
	struct connection *connections;
	unsigned n_connections;
	bool accepting; /* false while max_connections are open */
	sd_event_source *accept_pause; /* after accept() ran out of fds */
	struct uid_counter *uid_requests;
	struct log_throttle uid_connection_warnings, uid_request_warnings;
	void (*changed)(void *userdata);
	void *changed_userdata;
};

static void connection_process(struct connection *c);
static void server_set_accepting(struct server *server, bool accepting);

/* Returns true when the warning may be logged now.  more is then empty,
 * or gives the number of warnings left out since the last one. */
static bool log_throttle_allow(struct log_throttle *throttle, uint64_t now,
			       char *more, size_t more_size)
{
	if (throttle->last_usec &&
	    now < throttle->last_usec + SERVER_WARNING_INTERVAL_USEC) {
		throttle->suppressed++;
		return false;
	}
	more[0] = '\0';
	if (throttle->suppressed)
		snprintf(more, more_size,
			 " (and %u more rejections, not logged, since the last "
			 "such warning)",
			 throttle->suppressed);
	throttle->suppressed = 0;
	throttle->last_usec = now;
	return true;
}

static void connection_free(struct connection *c)
{
	struct server *server = c->server;

	if (c->task && c->waiter)
		task_remove_waiter(c->task, c->waiter);
	if (c->prev)
		c->prev->next = c->next;
	else
		server->connections = c->next;
	if (c->next)
		c->next->prev = c->prev;
	server->n_connections--;
	if (!server->accepting && !server->accept_pause &&
	    server->n_connections < server->config->max_connections)
		server_set_accepting(server, true);

	sd_event_source_disable_unref(c->source);
	sd_event_source_disable_unref(c->resume);
	sd_event_source_disable_unref(c->idle_timer);
	close(c->fd);
	peer_clear(&c->peer);
	cloudapp_msgbuf_free(&c->input);
	if (c->output) {
		OPENSSL_cleanse(c->output, c->output_len);
		free(c->output);
	}
	free(c);
}

static int connection_on_idle(sd_event_source *s, uint64_t usec,
			      void *userdata)
{
	struct connection *c = userdata;

	/* A GetTicket call waiting for its task is not idle. */
	if (c->task)
		return 0;
	log_debug("closing the connection of uid %u: no call for %lld s "
		  "(client_idle_timeout)",
		  (unsigned)c->peer.uid,
		  (long long)c->server->config->client_idle_timeout_ms / 1000);
	connection_free(c);
	return 0;
}

/* Restarts the countdown after which an unused connection is closed, so
 * that idle connections cannot hold on to max_connections. */
static void connection_arm_idle(struct connection *c)
{
	uint64_t now = 0;

	sd_event_now(c->server->event, CLOCK_MONOTONIC, &now);
	now += (uint64_t)c->server->config->client_idle_timeout_ms * 1000u;
	if (c->idle_timer) {
		sd_event_source_set_time(c->idle_timer, now);
		sd_event_source_set_enabled(c->idle_timer, SD_EVENT_ONESHOT);
		return;
	}
	if (sd_event_add_time(c->server->event, &c->idle_timer,
			      CLOCK_MONOTONIC, now, 100000u,
			      connection_on_idle, c) < 0)
		log_warning("cannot arm the idle timer of a connection, "
			    "ignoring");
}

static int connection_on_linger_end(sd_event_source *s, uint64_t usec,
				    void *userdata)
{
	connection_free(userdata);
	return 0;
}

static void connection_update_events(struct connection *c)
{
	uint32_t events = 0;

	if (c->output_sent < c->output_len)
		events |= EPOLLOUT;
	/* A waiting call keeps EPOLLIN until input arrives, which is rare,
	 * instead of turning it off and on again with two epoll_ctl()
	 * calls per call. */
	else if (c->draining || (!c->close_after_output && !c->task) ||
		 (c->task && !c->input_paused))
		events |= EPOLLIN;
	sd_event_source_set_io_events(c->source, events);
}

/*
 * Ends a connection after its final error: the daemon stops writing and
 * discards what the client still sends until it hangs up, for at most
 * SERVER_LINGER_MS.  Closing at once, with the client's call still unread,
 * would make the client's recv() fail with ECONNRESET before it reads the
 * error.  Returns true, as c stays until then.
 */
static bool connection_linger(struct connection *c)
{
	uint64_t now = 0;

	c->draining = true;
	shutdown(c->fd, SHUT_WR);
	sd_event_now(c->server->event, CLOCK_MONOTONIC, &now);
	sd_event_source_disable_unref(c->idle_timer);
	c->idle_timer = NULL;
	if (sd_event_add_time(c->server->event, &c->idle_timer,
			      CLOCK_MONOTONIC, now + SERVER_LINGER_MS * 1000ull,
			      0, connection_on_linger_end, c) < 0) {
		connection_free(c);
		return false;
	}
	connection_update_events(c);
	return true;
}

/* Sends what it can of the queued output; returns false if c was freed. */
static bool connection_flush(struct connection *c)
{
	while (c->output_sent < c->output_len) {
		ssize_t n = send(c->fd, c->output + c->output_sent,
				 c->output_len - c->output_sent,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			connection_free(c);
			return false;
		}
		c->output_sent += (size_t)n;
	}
	if (c->output_sent == c->output_len) {
		OPENSSL_cleanse(c->output, c->output_len);
		free(c->output);
		c->output = NULL;
		c->output_len = c->output_sent = 0;
		if (c->close_after_output && !c->draining)
			return connection_linger(c);
	}
	connection_update_events(c);
	return true;
}

/* Queues a message; returns false if c was freed. */
static bool connection_send(struct connection *c, json_object *message)
{
	size_t len;
	char *wire = cloudapp_message_serialize(message, &len);
	char *grown;

	if (!wire || c->output_len - c->output_sent + len > SERVER_OUTPUT_MAX) {
		log_warning("client uid %u does not read its replies, closing "
			    "the connection",
			    (unsigned)c->peer.uid);
		free(wire);
		connection_free(c);
		return false;
	}
	grown = malloc(c->output_len + len);
	if (!grown) {
		free(wire);
		connection_free(c);
		return false;
	}
	if (c->output) {
		memcpy(grown, c->output, c->output_len);
		OPENSSL_cleanse(c->output, c->output_len);
		free(c->output);
	}
	memcpy(grown + c->output_len, wire, len);
	OPENSSL_cleanse(wire, len);
	free(wire);
	c->output = grown;
	c->output_len += len;
	return connection_flush(c);
}

static bool connection_reply(struct connection *c, json_object *parameters,
			     bool continues)
{
	json_object *reply = json_object_new_object();
	bool alive;

	json_object_object_add(reply, "parameters", parameters);
	if (continues)
		json_object_object_add(reply, "continues",
				       json_object_new_boolean(true));
	alive = connection_send(c, reply);
	json_object_put(reply);
	return alive;
}

/* Sends an error reply whose parameters carry a "message". */
static bool connection_error(struct connection *c, const char *name,
			     json_object *parameters, const char *format, ...)
	__attribute__((format(printf, 4, 5)));

static bool connection_error(struct connection *c, const char *name,
			     json_object *parameters, const char *format, ...)
{
	json_object *reply = json_object_new_object();
	char message[1024];
	va_list ap;
	bool alive;

	va_start(ap, format);
	vsnprintf(message, sizeof(message), format, ap);
	va_end(ap);
	cloudapp_utf8_trim(message);

	if (!parameters)
		parameters = json_object_new_object();
	json_object_object_add(parameters, "message",
			       json_object_new_string(message));
	json_object_object_add(reply, "error", json_object_new_string(name));
	json_object_object_add(reply, "parameters", parameters);
	alive = connection_send(c, reply);
	json_object_put(reply);
	return alive;
}

static void json_add_string(json_object *object, const char *key,
			    const char *value)
{
	if (value)
		json_object_object_add(object, key,
				       json_object_new_string(value));
}

/* Adds a list of strings as a JSON array when it is set. */
static void json_add_string_list(json_object *object, const char *key,
				 char *const *list)
{
	json_object *array;

	if (!list)
		return;
	array = json_object_new_array();
	for (char *const *p = list; *p; p++)
		json_object_array_add(array, json_object_new_string(*p));
	json_object_object_add(object, key, array);
}

static json_object *task_state_parameters(struct task *task)
{
	json_object *p = json_object_new_object();
	unsigned position = task_get_queue_position(task);

	json_add_string(p, "state", task_state_name(task_get_state(task)));
	json_add_string(p, "user", task_get_user(task));
	json_add_string(p, "end_user_id", task_get_end_user_id(task));
	json_add_string(p, "task_id", task_get_task_id(task));
	json_add_string(p, "waiting", task_get_wait_name(task));
	if (position > 0)
		json_object_object_add(p, "queue_position",
				       json_object_new_int64(position));
	return p;
}

/* The state, the calls made and the time spent, for a progress reply. */
static json_object *task_progress_parameters(struct task *task)
{
	json_object *p = task_state_parameters(task);

	json_object_object_add(p, "polls",
			       json_object_new_int64(task_get_polls(task)));
	json_object_object_add(
		p, "elapsed_ms",
		json_object_new_int64((int64_t)(task_get_age_usec(task) / 1000)));
	return p;
}

static json_object *task_error_parameters(const struct task_error *error,
					  struct task *task)
{
	json_object *p = json_object_new_object();

	json_add_string(p, "code", error->code);
	json_add_string(p, "request_id", error->request_id);
	json_add_string(p, "task_id", task_get_task_id(task));
	if (error->http_status)
		json_object_object_add(p, "http_status",
				       json_object_new_int64(error->http_status));
	return p;
}

/* Wipes json-c's copy of a string member before the object is freed. */
static void json_wipe_string(json_object *object, const char *key)
{
	json_object *value;

	if (json_object_object_get_ex(object, key, &value))
		OPENSSL_cleanse((char *)json_object_get_string(value),
			      (size_t)json_object_get_string_len(value));
}

static bool connection_send_ticket(struct connection *c, struct task *task)
{
	const struct api_result *r = task_get_result(task);
	json_object *p = task_state_parameters(task);
	json_object *reply;
	bool alive;

	json_add_string(p, "request_id", r->request_id);
	json_add_string(p, "task_status", r->task_status);
	json_add_string(p, "ticket", r->ticket);
	json_add_string(p, "app_instance_group_id", r->app_instance_group_id);
	json_add_string(p, "app_instance_id", r->app_instance_id);
	json_add_string(p, "app_instance_persistent_id",
			r->app_instance_persistent_id);
	json_add_string(p, "os_type", r->os_type);
	json_add_string(p, "biz_region_id", r->biz_region_id);
	json_add_string(p, "avatar_id", r->avatar_id);
	if (r->has_tenant_id)
		json_object_object_add(p, "tenant_id",
				       json_object_new_int64(r->tenant_id));
	json_add_string_list(p, "client_command",
			    task_get_profile(task)->client_command);

	reply = json_object_new_object();
	json_object_object_add(reply, "parameters", json_object_get(p));
	alive = connection_send(c, reply);
	json_wipe_string(p, "ticket");
	json_object_put(p);
	json_object_put(reply);
	return alive;
}

/*
 * Sends the final reply for a finished task; returns false if c was
 * freed.  The caller consumes the task afterwards.
 */
static bool connection_send_result(struct connection *c, struct task *task)
{
	const struct task_error *error;

	if (task_get_state(task) == TASK_READY)
		return connection_send_ticket(c, task);
	error = task_get_error(task);
	return connection_error(c, error->name,
				task_error_parameters(error, task), "%s",
				error->message ? error->message : error->name);
}

static int connection_on_resume(sd_event_source *s, void *userdata)
{
	struct connection *c = userdata;

	sd_event_source_disable_unref(c->resume);
	c->resume = NULL;
	connection_process(c);
	return 0;
}

/*
 * Resumes reading calls once a parked call is done.  The next buffered call
 * is handled from the event loop, not from inside the task's notification,
 * because it may concern the same task.
 */
static void connection_resume(struct connection *c)
{
	c->task = NULL;
	c->waiter = NULL;
	c->input_paused = false;
	connection_arm_idle(c);
	connection_update_events(c);
	if (c->input.len > 0 && !c->resume &&
	    sd_event_add_defer(c->server->event, &c->resume,
			       connection_on_resume, c) < 0)
		connection_free(c);
}

static void connection_on_task(struct task *task, void *userdata)
{
	struct connection *c = userdata;
	enum task_state state = task_get_state(task);
	json_object *p;

	if (state == TASK_READY || state == TASK_FAILED) {
		bool alive;

		/* The task removes this waiter; it consumes itself only for
		 * a GetTicket. */
		c->waiter = NULL;
		if (!c->watching)
			alive = connection_send_result(c, task);
		else if (state == TASK_READY)
			alive = connection_reply(c, task_state_parameters(task),
						 false);
		else
			alive = connection_error(
				c, task_get_error(task)->name,
				task_error_parameters(task_get_error(task), task),
				"%s",
				task_get_error(task)->message ?
					task_get_error(task)->message :
					task_get_error(task)->name);
		if (alive)
			connection_resume(c);
		return;
	}
	if (!c->more)
		return;
	p = task_progress_parameters(task);
	connection_reply(c, p, true);
}

/*
 * Checks the "user" parameter, the caller's right to it and the EndUserId
 * mapping.  Returns a malloc'd EndUserId, or NULL after sending the error.
 * *ret_alive is false when sending the error freed c.
 */
static char *connection_authorize(struct connection *c,
				  json_object *parameters, const char **ret_user,
				  bool *ret_alive)
{
	const char *user = cloudapp_json_string(parameters, "user");
	struct log_ids ids = { .user = user };
	char *error = NULL, *end_user_id = NULL;
	struct mapping_rules rules;
	uid_t uid = 0;
	int r;

	*ret_alive = true;
	*ret_user = user;
	if (!cloudapp_user_name_valid(user)) {
		*ret_alive = connection_error(
			c, CLOUDAPP_ERROR_INVALID_PARAMETER,
			json_object_new_object(),
			"parameter \"user\" is missing or not a valid user name");
		return NULL;
	}
	r = peer_authorize(&c->peer, user, &error);
	if (r >= 0)
		r = policy_check_user(c->server->config, user, &uid, &error);
	if (r < 0) {
		log_ids(LOG_WARNING, &ids, "rejected a request from uid %u: %s",
			(unsigned)c->peer.uid, error ? error : "denied");
		*ret_alive = connection_error(
			c,
			r == -ENOENT ? CLOUDAPP_ERROR_NO_SUCH_USER :
				       CLOUDAPP_ERROR_PERMISSION_DENIED,
			NULL, "%s", error ? error : "permission denied");
		free(error);
		return NULL;
	}
	config_mapping_rules(c->server->config, &rules);
	r = mapping_end_user_id(&rules, user, uid, &end_user_id, &error);
	if (r < 0) {
		log_ids(LOG_WARNING, &ids, "%s", error ? error : "bad mapping");
		*ret_alive = connection_error(c,
					      CLOUDAPP_ERROR_INVALID_END_USER_ID,
					      NULL, "%s",
					      error ? error : "invalid EndUserId");
		free(error);
		return NULL;
	}
	return end_user_id;
}

/* Picks the profile for user: by name, groups and PAM service. */
static const struct ticket_profile *
connection_match_profile(struct connection *c, const char *user,
			 const char *service)
{
	struct profile_subject subject = { .user = user, .service = service };
	const struct ticket_profile *profile;
	char **groups = NULL;

	if (c->server->config->n_profiles > 0)
		groups = policy_user_groups(user);
	subject.groups = groups;
	profile = config_match_profile(c->server->config, &subject);
	profile_free_list(groups);
	return profile;
}

/*
 * Counts a request that starts a cloud task against the caller's
 * max_requests_per_uid.  Root, which opens every PAM session, is not
 * counted.  Returns true when the request may go on; otherwise the error
 * was sent, and *ret_alive is false when that freed c.
 */
static bool connection_within_rate(struct connection *c, const char *user,
				   bool *ret_alive)
{
	struct server *server = c->server;
	struct log_ids ids = { .user = user };
	uint64_t now = 0, retry_usec = 0;
	char more[96];

	*ret_alive = true;
	if (c->peer.uid == 0)
		return true;
	sd_event_now(server->event, CLOCK_MONOTONIC, &now);
	if (uid_counter_hit(server->uid_requests, c->peer.uid, now,
			    &retry_usec))
		return true;
	if (log_throttle_allow(&server->uid_request_warnings, now, more,
			       sizeof(more)))
		log_ids(LOG_WARNING, &ids,
			"uid %u started more than %u ticket tasks in a minute, "
			"rejecting%s",
			(unsigned)c->peer.uid,
			server->config->max_requests_per_uid, more);
	*ret_alive = connection_error(
		c, CLOUDAPP_ERROR_LIMIT_EXCEEDED, NULL,
		"uid %u started more than %u ticket tasks in the last minute "
		"(max_requests_per_uid); try again in %" PRIu64 " s",
		(unsigned)c->peer.uid, server->config->max_requests_per_uid,
		retry_usec / 1000000 + 1);
	return false;
}

/* Sends the error of a task that did not start, and frees error. */
static bool connection_start_error(struct connection *c, int r, char *error)
{
	bool alive = connection_error(c, CLOUDAPP_ERROR_INTERNAL, NULL,
				      "cannot start the ticket task: %s",
				      error ? error : strerror(-r));

	free(error);
	return alive;
}

/*
 * Returns the task of end_user_id, starting one when there is none.  On
 * failure returns NULL after sending the error, and *ret_alive is false
 * when that freed c.
 */
static struct task *connection_find_or_start(struct connection *c,
					     const char *user,
					     const char *end_user_id,
					     bool *ret_alive)
{
	struct task *task = task_find(c->server->registry, end_user_id);
	char *error = NULL;
	bool started;
	int r;

	/* A running task is joined; a ready ticket or a failed result
	 * waits for pickup and is handed out once. */
	*ret_alive = true;
	if (task)
		return task;
	if (!connection_within_rate(c, user, ret_alive))
		return NULL;
	r = task_start(c->server->registry, user, end_user_id,
		       connection_match_profile(c, user, NULL), &task,
		       &started, &error);
	if (r < 0) {
		*ret_alive = connection_start_error(c, r, error);
		return NULL;
	}
	return task;
}

/*
 * Makes c wait for task's result, sending a first progress reply when the
 * call set "more".  A watching connection (StartTicket) leaves the result
 * for pickup; a taking one (GetTicket) consumes it.
 */
static bool connection_wait_for_task(struct connection *c, struct task *task,
				     bool watches)
{
	c->watching = watches;
	c->waiter = task_add_waiter(task, connection_on_task, c, watches);
	if (!c->waiter)
		return connection_error(c, CLOUDAPP_ERROR_INTERNAL, NULL,
					"out of memory");
	c->task = task;
	if (c->more)
		return connection_reply(c, task_progress_parameters(task), true);
	connection_update_events(c);
	return true;
}

/*
 * Replies to StartTicket: at once with the task's state, or, with
 * "wait": true, when the task is ready or failed, after progress replies
 * when the call set "more".  Waiting leaves the ticket for pickup.
 */
static bool connection_start_reply(struct connection *c, struct task *task,
				   json_object *parameters)
{
	json_object *wait = NULL;
	enum task_state state = task_get_state(task);

	if (!json_object_object_get_ex(parameters, "wait", &wait) ||
	    !json_object_get_boolean(wait) || state == TASK_READY ||
	    state == TASK_FAILED) {
		if (wait && json_object_get_boolean(wait) &&
		    state == TASK_FAILED) {
			const struct task_error *error = task_get_error(task);

			return connection_error(
				c, error->name,
				task_error_parameters(error, task), "%s",
				error->message ? error->message : error->name);
		}
		return connection_reply(c, task_state_parameters(task), false);
	}
	return connection_wait_for_task(c, task, true);
}

/*
 * Returns the profile a StartTicket call names with "profile", as the PAM
 * module's profile= option does, or NULL when it names none.  Only root
 * may name one.  On an error returns NULL after sending it, and
 * *ret_alive is false when that freed c.
 */
static const struct ticket_profile *
connection_named_profile(struct connection *c, json_object *parameters,
			 bool *ret_alive)
{
	const struct daemon_config *config = c->server->config;
	const char *name = cloudapp_json_string(parameters, "profile");

	*ret_alive = true;
	if (!name)
		return NULL;
	if (c->peer.uid != 0) {
		*ret_alive = connection_error(
			c, CLOUDAPP_ERROR_PERMISSION_DENIED, NULL,
			"only root may choose the profile");
		return NULL;
	}
	if (strcmp(name, config->defaults.name) == 0)
		return &config->defaults;
	for (size_t i = 0; i < config->n_profiles; i++)
		if (strcmp(name, config->profiles[i].name) == 0)
			return &config->profiles[i];
	*ret_alive = connection_error(c, CLOUDAPP_ERROR_INVALID_PARAMETER, NULL,
				      "no profile named \"%s\"; see profiles "
				      "in cloudapp.conf(5)",
				      name);
	return NULL;
}

static bool connection_start_ticket(struct connection *c,
				    json_object *parameters)
{
	const struct ticket_profile *profile;
	const char *user, *app_id;
	char *end_user_id, *error = NULL;
	struct task *task = NULL;
	bool started, alive;
	int r;

	end_user_id = connection_authorize(c, parameters, &user, &alive);
	if (!end_user_id)
		return alive;
	/* StartTicket replaces a failed result with a new task. */
	task = task_find(c->server->registry, end_user_id);
	if (task && task_get_state(task) != TASK_FAILED) {
		free(end_user_id);
		return connection_start_reply(c, task, parameters);
	}
	if (!connection_within_rate(c, user, &alive)) {
		free(end_user_id);
		return alive;
	}
	profile = connection_named_profile(c, parameters, &alive);
	if (!profile && !alive) {
		free(end_user_id);
		return false;
	}
	if (!profile && cloudapp_json_string(parameters, "profile")) {
		free(end_user_id);
		return true;
	}
	if (!profile)
		profile = connection_match_profile(
			c, user, cloudapp_json_string(parameters, "service"));
	app_id = cloudapp_json_string(parameters, "app_id");
	if (app_id) {
		struct ticket_profile *own;

		if (c->peer.uid != 0) {
			free(end_user_id);
			return connection_error(
				c, CLOUDAPP_ERROR_PERMISSION_DENIED, NULL,
				"only root may choose the AppId");
		}
		own = calloc(1, sizeof(*own));
		if (!own || !(own->name = strdup(profile->name)) ||
		    !(own->app_id = strdup(app_id)) ||
		    profile_inherit(own, profile) < 0) {
			if (own)
				profile_clear(own);
			free(own);
			free(end_user_id);
			return connection_error(c, CLOUDAPP_ERROR_INTERNAL,
						NULL, "out of memory");
		}
		r = task_start_owned(c->server->registry, user, end_user_id,
				     own, &task, &started, &error);
	} else {
		r = task_start(c->server->registry, user, end_user_id,
			       profile, &task, &started, &error);
	}
	free(end_user_id);
	if (r < 0)
		return connection_start_error(c, r, error);
	return connection_start_reply(c, task, parameters);
}

static bool connection_get_ticket(struct connection *c,
				  json_object *parameters)
{
	const char *user;
	char *end_user_id;
	struct task *task;
	bool alive;

	end_user_id = connection_authorize(c, parameters, &user, &alive);
	if (!end_user_id)
		return alive;

	/* A finished task found here was started earlier (at login); its
	 * result, ticket or error, is handed out once. */
	task = connection_find_or_start(c, user, end_user_id, &alive);
	free(end_user_id);
	if (!task)
		return alive;

	if (task_get_state(task) == TASK_READY ||
	    task_get_state(task) == TASK_FAILED) {
		alive = connection_send_result(c, task);
		task_consume(task);
		return alive;
	}

	return connection_wait_for_task(c, task, false);
}

static bool connection_drop_ticket(struct connection *c,
				   json_object *parameters)
{
	const char *user;
	char *end_user_id;
	struct task *task;
	json_object *p;
	bool alive;

	end_user_id = connection_authorize(c, parameters, &user, &alive);
	if (!end_user_id)
		return alive;
	task = task_find(c->server->registry, end_user_id);
	free(end_user_id);

	p = json_object_new_object();
	json_object_object_add(p, "dropped", json_object_new_boolean(task != NULL));
	if (task) {
		struct log_ids ids = { .user = user,
				       .task_id = task_get_task_id(task) };

		log_ids(LOG_INFO, &ids, "ticket task dropped on request");
		task_cancel(task, "the ticket task was dropped on request");
	}
	return connection_reply(c, p, false);
}

/* Replies with what a ticket for the user would use, without a call. */
static bool connection_resolve_user(struct connection *c,
				    json_object *parameters)
{
	const struct daemon_config *config = c->server->config;
	const struct ticket_profile *profile;
	struct mapping_rules rules;
	const char *user;
	char *end_user_id;
	json_object *p, *request;
	bool alive;

	end_user_id = connection_authorize(c, parameters, &user, &alive);
	if (!end_user_id)
		return alive;
	config_mapping_rules(config, &rules);
	p = json_object_new_object();
	json_add_string(p, "user", user);
	json_add_string(p, "end_user_id", end_user_id);
	json_add_string(p, "end_user_id_source",
			mapping_map_lookup(&rules, user) ? "end_user_id_map" :
							   "end_user_id");
	free(end_user_id);
	profile = connection_match_profile(
		c, user, cloudapp_json_string(parameters, "service"));
	json_add_string(p, "profile", profile->name);
	request = json_object_new_object();
#define X(member, api_name) json_add_string(request, api_name, profile->member);
	PROFILE_PARAMETERS
#undef X
	json_add_string_list(request, "AppInstanceGroupIdList",
			     profile->app_instance_group_ids);
	json_object_object_add(p, "request", request);
	json_add_string_list(p, "client_command", profile->client_command);
	return connection_reply(c, p, false);
}

struct status_context {
	const struct peer *peer;
	const char *end_user_id; /* the caller's, or NULL for root */
	json_object *tasks;
};

static void status_add_task(struct task *task, void *userdata)
{
	struct status_context *ctx = userdata;
	json_object *t;

	/* Others see the tasks of their own EndUserId. */
	if (ctx->peer->uid != 0 &&
	    (!ctx->end_user_id ||
	     strcmp(ctx->end_user_id, task_get_end_user_id(task)) != 0))
		return;
	t = task_state_parameters(task);
	json_object_object_add(
		t, "age_ms",
		json_object_new_int64((int64_t)(task_get_age_usec(task) / 1000)));
	json_object_array_add(ctx->tasks, t);
}

static bool connection_get_status(struct connection *c)
{
	const struct daemon_config *config = c->server->config;
	json_object *p = json_object_new_object();
	struct status_context ctx = { .peer = &c->peer,
				      .tasks = json_object_new_array() };
	char *end_user_id = NULL, *error = NULL;
	struct mapping_rules rules;
	bool alive;

	config_mapping_rules(config, &rules);
	if (c->peer.uid != 0 && c->peer.name &&
	    mapping_end_user_id(&rules, c->peer.name, c->peer.uid,
				&end_user_id, &error) < 0)
		free(error);
	ctx.end_user_id = end_user_id;
	json_add_string(p, "version", PACKAGE_VERSION);
	/* Account details are for the administrator only. */
	if (c->peer.uid == 0) {
		json_add_string(p, "endpoint", config->endpoint);
		const struct credentials *credentials =
			task_registry_credentials(c->server->registry);

		json_add_string(p, "access_key_id",
				credentials->access_key_id);
		json_add_string(p, "credential_source", credentials->source);
		json_object_object_add(
			p, "security_token",
			json_object_new_boolean(credentials->security_token !=
						NULL));
		json_add_string(p, "end_user_id_template", config->end_user_id);
	}
	task_registry_foreach(c->server->registry, status_add_task, &ctx);
	json_object_object_add(p, "tasks", ctx.tasks);
	alive = connection_reply(c, p, false);
	free(end_user_id);
	return alive;
}

/*
 * Checks the type of each known parameter, since json-c would otherwise
 * read "wait": "yes" as true and a numeric "user" as missing.  Returns
 * true, or false after sending an error, with *ret_alive false when that
 * freed c.
 */
static bool connection_parameter_types_valid(struct connection *c,
					     json_object *parameters,
					     bool *ret_alive)
{
	static const struct {
		const char *name;
		json_type type;
	} known[] = {
		{ "user", json_type_string },	 { "service", json_type_string },
		{ "profile", json_type_string }, { "app_id", json_type_string },
		{ "wait", json_type_boolean },
	};

	*ret_alive = true;
	for (size_t i = 0; parameters && i < sizeof(known) / sizeof(known[0]);
	     i++) {
		json_object *value;

		if (!json_object_object_get_ex(parameters, known[i].name,
					       &value) ||
		    json_object_is_type(value, known[i].type))
			continue;
		*ret_alive = connection_error(
			c, CLOUDAPP_ERROR_INVALID_PARAMETER,
			json_object_new_object(),
			"parameter \"%s\" must be a %s, not %s", known[i].name,
			json_type_to_name(known[i].type),
			json_type_to_name(json_object_get_type(value)));
		return false;
	}
	return true;
}

/* Handles one call; returns false if c was freed. */
static bool connection_dispatch(struct connection *c, json_object *call)
{
	const char *method = cloudapp_json_string(call, "method");
	json_object *parameters = NULL, *more = NULL;
	bool call_valid = method != NULL, alive;

	if (json_object_object_get_ex(call, "more", &more) &&
	    !json_object_is_type(more, json_type_boolean))
		call_valid = false;
	if (json_object_object_get_ex(call, "parameters", &parameters) &&
	    !json_object_is_type(parameters, json_type_object))
		call_valid = false;
	c->more = call_valid && more && json_object_get_boolean(more);
	if (!call_valid) {
		c->close_after_output = true;
		return connection_error(c, CLOUDAPP_ERROR_INVALID_MESSAGE, NULL,
					"a call needs a string \"method\", an "
					"object \"parameters\" and a boolean "
					"\"more\"");
	}
	if (!connection_parameter_types_valid(c, parameters, &alive))
		return alive;

	if (strcmp(method, CLOUDAPP_METHOD_START_TICKET) == 0)
		return connection_start_ticket(c, parameters);
	if (strcmp(method, CLOUDAPP_METHOD_GET_TICKET) == 0)
		return connection_get_ticket(c, parameters);
	if (strcmp(method, CLOUDAPP_METHOD_DROP_TICKET) == 0)
		return connection_drop_ticket(c, parameters);
	if (strcmp(method, CLOUDAPP_METHOD_GET_STATUS) == 0)
		return connection_get_status(c);
	if (strcmp(method, CLOUDAPP_METHOD_RESOLVE_USER) == 0)
		return connection_resolve_user(c, parameters);
	return connection_error(c, CLOUDAPP_ERROR_METHOD_NOT_FOUND, NULL,
				"unknown method; this daemon serves %s",
				CLOUDAPP_INTERFACE);
}

/* Handles the buffered calls until one has to wait. */
static void connection_process(struct connection *c)
{
	struct server *server = c->server;

	while (!c->task && !c->close_after_output) {
		json_object *call = NULL;
		bool alive;
		int r = cloudapp_msgbuf_next(&c->input, &call);

		if (r == 0)
			return;
		if (r < 0) {
			log_warning("closing the connection of uid %u: %s",
				    (unsigned)c->peer.uid,
				    r == -EMSGSIZE ? "message too long" :
						     "malformed message");
			c->close_after_output = true;
			connection_error(c, CLOUDAPP_ERROR_INVALID_MESSAGE,
					 NULL, "%s",
					 r == -EMSGSIZE ?
						 "message longer than the limit" :
						 "message is not a valid JSON "
						 "object");
			return;
		}
		alive = connection_dispatch(c, call);
		json_object_put(call);
		if (server->changed)
			server->changed(server->changed_userdata);
		if (!alive)
			return;
		connection_arm_idle(c);
	}
}

/* Discards input after the final error; frees c at the client's hangup. */
static void connection_drain(struct connection *c)
{
	char chunk[4096];
	ssize_t n;

	do {
		n = recv(c->fd, chunk, sizeof(chunk), MSG_DONTWAIT);
	} while (n > 0 || (n < 0 && errno == EINTR));
	OPENSSL_cleanse(chunk, sizeof(chunk));
	if (n == 0 || errno != EAGAIN)
		connection_free(c);
}

static int connection_on_io(sd_event_source *s, int fd, uint32_t revents,
			    void *userdata)
{
	struct connection *c = userdata;
	char chunk[4096];

	if (revents & EPOLLOUT) {
		if (!connection_flush(c))
			return 0;
	}
	if (!(revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return 0;
	if (c->draining) {
		connection_drain(c);
		return 0;
	}
	if (c->task || c->close_after_output) {
		/* Not reading now; a hangup while waiting ends the wait. */
		if (revents & (EPOLLHUP | EPOLLERR)) {
			connection_free(c);
			return 0;
		}
		c->input_paused = true;
		connection_update_events(c);
		return 0;
	}

	for (;;) {
		ssize_t n = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);

		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			connection_free(c);
			return 0;
		}
		if (n < 0)
			break;
		if (cloudapp_msgbuf_feed(&c->input, chunk, (size_t)n) < 0) {
			OPENSSL_cleanse(chunk, sizeof(chunk));
			log_warning("closing the connection of uid %u: message "
				    "too long",
				    (unsigned)c->peer.uid);
			c->close_after_output = true;
			connection_error(c, CLOUDAPP_ERROR_INVALID_MESSAGE,
					 NULL, "message longer than the limit");
			return 0;
		}
		OPENSSL_cleanse(chunk, (size_t)n);
		/* Read no further than one complete call, so a client that
		 * pipelines calls cannot make the buffer grow without end. */
		if ((size_t)n < sizeof(chunk) ||
		    memchr(c->input.data, '\0', c->input.len))
			break;
	}
	connection_process(c);
	return 0;
}

static int server_on_accept_pause(sd_event_source *s, uint64_t usec,
				  void *userdata)
{
	struct server *server = userdata;

	sd_event_source_disable_unref(server->accept_pause);
	server->accept_pause = NULL;
	if (server->n_connections < server->config->max_connections)
		server_set_accepting(server, true);
	return 0;
}

static void server_pause_accepting(struct server *server)
{
	uint64_t now = 0;

	server_set_accepting(server, false);
	if (server->accept_pause)
		return;
	sd_event_now(server->event, CLOCK_MONOTONIC, &now);
	if (sd_event_add_time(server->event, &server->accept_pause,
			      CLOCK_MONOTONIC,
			      now + SERVER_ACCEPT_PAUSE_MS * 1000ull, 0,
			      server_on_accept_pause, server) < 0)
		server_set_accepting(server, true);
}

static void server_set_accepting(struct server *server, bool accepting)
{
	server->accepting = accepting;
	for (struct listener *l = server->listeners; l; l = l->next)
		sd_event_source_set_enabled(l->source, accepting ? SD_EVENT_ON :
								   SD_EVENT_OFF);
}

/*
 * Enforces max_connections_per_uid for a new connection c, so that one
 * local user cannot take every connection.  Returns false when c was
 * rejected and freed.
 */
static bool server_check_uid_connections(struct server *server,
					 struct connection *c)
{
	unsigned count = 0;
	uint64_t now = 0;
	char more[96];

	if (c->peer.uid == 0)
		return true;
	for (struct connection *o = server->connections; o; o = o->next)
		if (o->peer.uid == c->peer.uid)
			count++;
	if (count <= server->config->max_connections_per_uid)
		return true;
	sd_event_now(server->event, CLOCK_MONOTONIC, &now);
	if (log_throttle_allow(&server->uid_connection_warnings, now, more,
			       sizeof(more)))
		log_warning("uid %u reached max_connections_per_uid (%u open), "
			    "rejecting a new connection%s",
			    (unsigned)c->peer.uid, count - 1, more);
	c->close_after_output = true;
	connection_error(c, CLOUDAPP_ERROR_LIMIT_EXCEEDED, NULL,
			 "uid %u reached max_connections_per_uid (%u open); "
			 "close one and retry",
			 (unsigned)c->peer.uid, count - 1);
	return false;
}

/* Accepts one connection from the listening socket fd.  Returns false
 * when none was waiting or accepting failed. */
static bool server_accept_one(struct server *server, int fd)
{
	struct connection *c;
	int cfd;

	cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (cfd < 0) {
		if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
			return false;
		/* Out of descriptors or memory: retrying at once would spin,
		 * so pause accepting; clients wait in the backlog. */
		log_warning("accept failed: %s; pausing new connections for "
			    "%u ms",
			    strerror(errno), SERVER_ACCEPT_PAUSE_MS);
		server_pause_accepting(server);
		return false;
	}

	c = calloc(1, sizeof(*c));
	if (!c) {
		close(cfd);
		return false;
	}
	c->server = server;
	c->fd = cfd;
	cloudapp_msgbuf_init(&c->input);
	c->next = server->connections;
	if (c->next)
		c->next->prev = c;
	server->connections = c;
	server->n_connections++;

	if (peer_read(cfd, &c->peer) < 0 ||
	    sd_event_add_io(server->event, &c->source, cfd, EPOLLIN,
			    connection_on_io, c) < 0) {
		log_warning("cannot set up a new connection, closing it");
		connection_free(c);
		return false;
	}
	if (!server_check_uid_connections(server, c))
		return true;
	connection_arm_idle(c);
	if (server->n_connections >= server->config->max_connections) {
		/* The kernel keeps further clients in the backlog until a
		 * connection closes. */
		log_warning("%u connections open (max_connections), not "
			    "accepting more until one closes",
			    server->n_connections);
		server_set_accepting(server, false);
	}
	/* Clients send their call right after connecting, so under load it
	 * has usually arrived, and reading it now saves a loop iteration.
	 * Otherwise recv() fails with EAGAIN and EPOLLIN brings the call. */
	connection_on_io(c->source, cfd, EPOLLIN, c);
	return true;
}

static int server_on_accept(sd_event_source *s, int fd, uint32_t revents,
			    void *userdata)
{
	struct server *server = userdata;

	/* A burst of logins fills the backlog, and taking several clients
	 * per wakeup saves loop iterations.  The price is an accept4() that
	 * fails with EAGAIN once the backlog is empty. */
	for (unsigned i = 0; i < SERVER_ACCEPT_BATCH && server->accepting;
	     i++)
		if (!server_accept_one(server, fd))
			break;
	return 0;
}

int server_new(sd_event *event, const struct daemon_config *config,
	       struct task_registry *registry, struct server **ret_server)
{
	struct server *server = calloc(1, sizeof(*server));

	if (!server)
		return -ENOMEM;
	server->event = sd_event_ref(event);
	server->config = config;
	server->registry = registry;
	server->accepting = true;
	server->uid_requests = uid_counter_new(config->max_requests_per_uid);
	if (!server->uid_requests) {
		server_free(server);
		return -ENOMEM;
	}
	*ret_server = server;
	return 0;
}

void server_set_config(struct server *server,
		       const struct daemon_config *config)
{
	server->config = config;
	uid_counter_set_max(server->uid_requests, config->max_requests_per_uid);
	if (!server->accepting && !server->accept_pause &&
	    server->n_connections < config->max_connections)
		server_set_accepting(server, true);
}

unsigned server_count_connections(const struct server *server)
{
	return server->n_connections;
}

bool server_has_pending(const struct server *server)
{
	for (struct listener *l = server->listeners; l; l = l->next) {
		struct pollfd pfd = { .fd = l->fd, .events = POLLIN };

		if (poll(&pfd, 1, 0) > 0 && (pfd.revents & POLLIN))
			return true;
	}
	return false;
}

void server_free(struct server *server)
{
	if (!server)
		return;
	while (server->connections)
		connection_free(server->connections);
	while (server->listeners) {
		struct listener *l = server->listeners;

		server->listeners = l->next;
		sd_event_source_disable_unref(l->source);
		close(l->fd);
		free(l);
	}
	uid_counter_free(server->uid_requests);
	sd_event_source_disable_unref(server->accept_pause);
	sd_event_unref(server->event);
	free(server);
}

int server_add_listener(struct server *server, int fd)
{
	struct listener *l = calloc(1, sizeof(*l));
	int flags, r;

	if (!l)
		return -ENOMEM;
	l->fd = fd;
	/* server_on_accept() accepts until EAGAIN, and systemd passes
	 * listening sockets in blocking mode unless NonBlocking=yes. */
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		r = -errno;
		free(l);
		return r;
	}
	r = sd_event_add_io(server->event, &l->source, fd, EPOLLIN,
			    server_on_accept, server);
	if (r < 0) {
		free(l);
		return r;
	}
	if (!server->accepting)
		sd_event_source_set_enabled(l->source, SD_EVENT_OFF);
	l->next = server->listeners;
	server->listeners = l;
	return 0;
}

void server_set_changed_callback(struct server *server,
				 void (*changed)(void *userdata),
				 void *userdata)
{
	server->changed = changed;
	server->changed_userdata = userdata;
}
