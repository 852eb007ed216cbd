/*
 * Message framing, reply parsing and the blocking client used by
 * pam_cloudapp.so and cloudappctl.  See protocol.h for the message format.
 */

#include "config.h"

#include "protocol.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

void cloudapp_msgbuf_init(struct cloudapp_msgbuf *buf)
{
	memset(buf, 0, sizeof(*buf));
}

void cloudapp_msgbuf_free(struct cloudapp_msgbuf *buf)
{
	if (buf->data) {
		cloudapp_wipe(buf->data, buf->cap);
		free(buf->data);
	}
	cloudapp_msgbuf_init(buf);
}

/* Returns the length of the first message (up to its NUL), or -1. */
static ssize_t msgbuf_message_end(const struct cloudapp_msgbuf *buf)
{
	const char *nul;

	if (buf->len == 0)
		return -1;
	nul = memchr(buf->data, '\0', buf->len);
	return nul ? nul - buf->data : -1;
}

int cloudapp_msgbuf_feed(struct cloudapp_msgbuf *buf, const void *bytes,
			 size_t n)
{
	size_t need;

	/* A peer that sends more than one message's worth without a NUL is
	 * misbehaving; stop growing the buffer there. */
	if (msgbuf_message_end(buf) < 0 && buf->len > CLOUDAPP_MESSAGE_MAX)
		return -EMSGSIZE;

	need = buf->len + n;
	if (need > buf->cap) {
		size_t cap = buf->cap ? buf->cap : 4096;
		char *data;

		while (cap < need)
			cap *= 2;
		/* Allocate fresh and wipe the old copy: realloc would leave
		 * a ticket behind in freed memory. */
		data = malloc(cap);
		if (!data)
			return -ENOMEM;
		if (buf->data) {
			memcpy(data, buf->data, buf->len);
			cloudapp_wipe(buf->data, buf->cap);
			free(buf->data);
		}
		buf->data = data;
		buf->cap = cap;
	}

	memcpy(buf->data + buf->len, bytes, n);
	buf->len += n;
	return 0;
}

/* Removes the first n bytes of the buffer. */
static void msgbuf_consume(struct cloudapp_msgbuf *buf, size_t n)
{
	memmove(buf->data, buf->data + n, buf->len - n);
	cloudapp_wipe(buf->data + buf->len - n, n);
	buf->len -= n;
}

int cloudapp_msgbuf_next(struct cloudapp_msgbuf *buf,
			 json_object **ret_message)
{
	json_tokener *tokener;
	json_object *message;
	ssize_t end;
	int r = 0;

	*ret_message = NULL;
	end = msgbuf_message_end(buf);
	if (end < 0)
		return buf->len > CLOUDAPP_MESSAGE_MAX ? -EMSGSIZE : 0;
	if ((size_t)end > CLOUDAPP_MESSAGE_MAX) {
		msgbuf_consume(buf, (size_t)end + 1);
		return -EMSGSIZE;
	}

	/* json-c 0.16's JSON_TOKENER_VALIDATE_UTF8 lets overlong forms,
	 * surrogates and code points past U+10FFFF through. */
	if (!cloudapp_utf8_valid(buf->data, (size_t)end)) {
		msgbuf_consume(buf, (size_t)end + 1);
		return -EBADMSG;
	}

	tokener = json_tokener_new_ex(CLOUDAPP_MESSAGE_DEPTH_MAX);
	if (!tokener)
		return -ENOMEM;
	json_tokener_set_flags(tokener, JSON_TOKENER_STRICT |
						JSON_TOKENER_VALIDATE_UTF8);
	message = json_tokener_parse_ex(tokener, buf->data, (int)end);
	if (!message || json_tokener_get_error(tokener) != json_tokener_success ||
	    json_tokener_get_parse_end(tokener) != (size_t)end ||
	    !json_object_is_type(message, json_type_object)) {
		json_object_put(message);
		r = -EBADMSG;
	} else {
		*ret_message = message;
		r = 1;
	}
	json_tokener_free(tokener);
	msgbuf_consume(buf, (size_t)end + 1);
	return r;
}

char *cloudapp_message_serialize(json_object *message, size_t *ret_len)
{
	const char *text;
	size_t len;
	char *wire;

	text = json_object_to_json_string_length(
		message, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
		&len);
	if (!text)
		return NULL;
	wire = malloc(len + 1);
	if (!wire)
		return NULL;
	memcpy(wire, text, len);
	wire[len] = '\0';
	*ret_len = len + 1;
	return wire;
}

json_object *cloudapp_call_new(const char *method, json_object *parameters,
			       bool more)
{
	json_object *call = json_object_new_object();

	if (!call) {
		json_object_put(parameters);
		return NULL;
	}
	json_object_object_add(call, "method", json_object_new_string(method));
	json_object_object_add(call, "parameters",
			       parameters ? parameters : json_object_new_object());
	if (more)
		json_object_object_add(call, "more",
				       json_object_new_boolean(true));
	return call;
}

int cloudapp_reply_parse(json_object *reply, const char **ret_error,
			 json_object **ret_parameters, bool *ret_continues)
{
	json_object *error = NULL, *parameters = NULL, *continues = NULL;

	if (!json_object_is_type(reply, json_type_object))
		return -EBADMSG;
	if (json_object_object_get_ex(reply, "error", &error) &&
	    !json_object_is_type(error, json_type_string))
		return -EBADMSG;
	if (!json_object_object_get_ex(reply, "parameters", &parameters) ||
	    !json_object_is_type(parameters, json_type_object))
		return -EBADMSG;
	if (json_object_object_get_ex(reply, "continues", &continues) &&
	    !json_object_is_type(continues, json_type_boolean))
		return -EBADMSG;

	*ret_error = error ? json_object_get_string(error) : NULL;
	*ret_parameters = parameters;
	*ret_continues = continues && json_object_get_boolean(continues);
	return 0;
}

const char *cloudapp_json_string(json_object *object, const char *key)
{
	json_object *value;

	if (!object || !json_object_object_get_ex(object, key, &value) ||
	    !json_object_is_type(value, json_type_string))
		return NULL;
	/* "alice\u0000x" would otherwise read as "alice". */
	if (strlen(json_object_get_string(value)) !=
	    (size_t)json_object_get_string_len(value))
		return NULL;
	return json_object_get_string(value);
}

bool cloudapp_user_name_valid(const char *name)
{
	size_t len;

	if (!name)
		return false;
	len = strlen(name);
	if (len == 0 || len > CLOUDAPP_USER_NAME_MAX)
		return false;
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return false;
	if (!cloudapp_utf8_valid(name, len))
		return false;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		if (*p < 0x20 || *p == 0x7f || *p == '/')
			return false;
		/* C1 controls, U+0080 to U+009F, are 0xc2 0x80..0x9f. */
		if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			return false;
	}
	return true;
}

uint64_t cloudapp_now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Wait between connection attempts while the daemon's backlog is full. */
#define CLIENT_CONNECT_RETRY_MS 20
/* Pause before connecting again to a daemon that closed the connection. */
#define CLIENT_RECONNECT_DELAY_MS 200

/* Returns the milliseconds left before the deadline for poll(), -1 for
 * none, or 0 when it has passed. */
static int client_poll_timeout(const struct cloudapp_client *client)
{
	uint64_t now;

	if (client->deadline_usec == 0)
		return -1;
	now = cloudapp_now_usec();
	if (now >= client->deadline_usec)
		return 0;
	return (int)((client->deadline_usec - now + 999) / 1000);
}

/* Waits until fd is ready for events; returns 0 or -ETIMEDOUT. */
static int client_wait(struct cloudapp_client *client, short events)
{
	struct pollfd pfd = { .fd = client->fd, .events = events };

	for (;;) {
		int timeout = client_poll_timeout(client);
		int n;

		if (timeout == 0)
			return -ETIMEDOUT;
		n = poll(&pfd, 1, timeout);
		if (n > 0)
			return 0;
		if (n == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

/* Checks the socket file and its folder before connecting. */
static const char *client_untrusted_path(const char *path)
{
	char folder[sizeof(((struct sockaddr_un *)0)->sun_path)];
	const char *slash = strrchr(path, '/');
	struct stat st;

	if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode))
		return "the path is not a socket";
	if (!slash || (size_t)(slash - path) >= sizeof(folder))
		return NULL;
	memcpy(folder, path, (size_t)(slash - path));
	folder[slash - path] = '\0';
	if (slash == path)
		strcpy(folder, "/");
	if (stat(folder, &st) < 0)
		return NULL; /* connect() reports it */
	if (st.st_uid != 0)
		return "its folder is not owned by root";
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return "its folder is writable by group or others";
	return NULL;
}

/*
 * Checks that the process that listens on the socket runs as root or as
 * the service user.  SO_PEERCRED names the process that last called
 * listen() on it: the daemon, which calls it again on a socket from
 * systemd, or systemd itself for a client that waited in the backlog
 * before the daemon started.
 */
static const char *client_untrusted_peer(struct cloudapp_client *client)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	uid_t service_uid;

	if (getsockopt(client->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return "its peer credentials cannot be read";
	if (cred.uid == 0)
		return NULL;
	if (cloudapp_service_uid(&service_uid) == 0 && cred.uid == service_uid)
		return NULL;
	snprintf(client->untrusted_reason, sizeof(client->untrusted_reason),
		 "it is served by uid %u, not by root or the user %s",
		 (unsigned)cred.uid, CLOUDAPP_SERVICE_USER);
	return client->untrusted_reason;
}

/* Opens client->fd to client->path within the deadline. */
static int client_open(struct cloudapp_client *client)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	socklen_t len = sizeof(addr);
	int error = 0;
	int r;

	if (strlen(client->path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	strcpy(addr.sun_path, client->path);
	client->untrusted = client_untrusted_path(client->path);
	if (client->untrusted)
		return -EPERM;

	client->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
			    0);
	if (client->fd < 0)
		return -errno;

	for (;;) {
		int timeout;

		if (connect(client->fd, (struct sockaddr *)&addr,
			    sizeof(addr)) == 0)
			goto connected;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			break;
		/* The listener's backlog is full, and the kernel does not
		 * say when it has room: try again shortly, until the
		 * deadline. */
		timeout = client_poll_timeout(client);
		if (timeout == 0)
			return -ETIMEDOUT;
		if (timeout < 0 || timeout > CLIENT_CONNECT_RETRY_MS)
			timeout = CLIENT_CONNECT_RETRY_MS;
		poll(NULL, 0, timeout);
	}
	if (errno != EINPROGRESS)
		return -errno;
	r = client_wait(client, POLLOUT);
	if (r < 0)
		return r;
	len = sizeof(error);
	if (getsockopt(client->fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0 ||
	    error != 0)
		return error ? -error : -errno;

connected:
	client->untrusted = client_untrusted_peer(client);
	if (client->untrusted)
		return -EPERM;
	return 0;
}

int cloudapp_client_connect(struct cloudapp_client *client, const char *path,
			    int timeout_ms)
{
	int r;

	memset(client, 0, sizeof(*client));
	client->fd = -1;
	cloudapp_msgbuf_init(&client->buf);
	client->deadline_usec =
		timeout_ms > 0 ? cloudapp_now_usec() +
					 (uint64_t)timeout_ms * 1000u : 0;
	client->path = strdup(path);
	if (!client->path)
		return -ENOMEM;

	r = client_open(client);
	if (r < 0)
		cloudapp_client_close(client);
	return r;
}

/* Writes len bytes of wire within the deadline. */
static int client_write(struct cloudapp_client *client, const char *wire,
			size_t len)
{
	size_t sent = 0;

	while (sent < len) {
		ssize_t n = send(client->fd, wire + sent, len - sent,
				 MSG_NOSIGNAL);
		int r;

		if (n >= 0) {
			sent += (size_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return errno == EPIPE ? -ECONNRESET : -errno;
		r = client_wait(client, POLLOUT);
		if (r < 0)
			return r;
	}
	return 0;
}

/*
 * Connects again after the daemon closed the connection and resends the
 * last call, unless the reconnects are used up.  A daemon restarted by
 * systemd serves the new connection: the socket unit keeps listening.
 * Returns 0, or the error that ends the call.
 */
static int client_reconnect(struct cloudapp_client *client)
{
	int timeout, r;

	if (!client->call || client->reconnects >= CLOUDAPP_CLIENT_RECONNECTS_MAX)
		return -ECONNRESET;
	client->reconnects++;
	close(client->fd);
	client->fd = -1;
	cloudapp_msgbuf_free(&client->buf);
	cloudapp_msgbuf_init(&client->buf);

	/* A pause lets a daemon started with --listen, which has no socket
	 * unit to keep its socket, come back before connect fails. */
	timeout = client_poll_timeout(client);
	if (timeout == 0)
		return -ETIMEDOUT;
	if (timeout < 0 || timeout > CLIENT_RECONNECT_DELAY_MS)
		timeout = CLIENT_RECONNECT_DELAY_MS;
	poll(NULL, 0, timeout);

	r = client_open(client);
	if (r < 0)
		return r;
	return client_write(client, client->call, client->call_len);
}

/* Wipes and frees the stored call. */
static void client_forget_call(struct cloudapp_client *client)
{
	if (client->call) {
		cloudapp_wipe(client->call, client->call_len);
		free(client->call);
	}
	client->call = NULL;
	client->call_len = 0;
}

int cloudapp_client_send(struct cloudapp_client *client, const char *method,
			 json_object *parameters, bool more)
{
	json_object *call;
	int r;

	call = cloudapp_call_new(method, parameters, more);
	if (!call)
		return -ENOMEM;
	client_forget_call(client);
	client->reconnects = 0;
	client->call = cloudapp_message_serialize(call, &client->call_len);
	json_object_put(call);
	if (!client->call)
		return -ENOMEM;

	r = client_write(client, client->call, client->call_len);
	if (r == -ECONNRESET)
		r = client_reconnect(client);
	return r;
}

int cloudapp_client_receive(struct cloudapp_client *client,
			    json_object **ret_reply)
{
	char chunk[4096];
	int r;

	for (;;) {
		ssize_t n;

		r = cloudapp_msgbuf_next(&client->buf, ret_reply);
		if (r != 0)
			break;

		r = client_wait(client, POLLIN);
		if (r < 0)
			break;
		n = recv(client->fd, chunk, sizeof(chunk), 0);
		if (n == 0 || (n < 0 && errno == ECONNRESET)) {
			r = client_reconnect(client);
			if (r < 0)
				break;
			continue;
		}
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			r = -errno;
			break;
		}
		r = cloudapp_msgbuf_feed(&client->buf, chunk, (size_t)n);
		cloudapp_wipe(chunk, (size_t)n);
		if (r < 0)
			break;
	}
	return r < 0 ? r : 0;
}

void cloudapp_client_close(struct cloudapp_client *client)
{
	if (client->fd >= 0)
		close(client->fd);
	client->fd = -1;
	cloudapp_msgbuf_free(&client->buf);
	client_forget_call(client);
	free(client->path);
	client->path = NULL;
}
