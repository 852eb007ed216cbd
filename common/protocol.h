/*
 * The wire protocol between cloudapp-ticketd, pam_cloudapp.so and
 * cloudappctl.
 *
 * Messages are JSON objects, each followed by one NUL byte, on a Unix stream
 * socket, in the style of the varlink protocol.  A call is
 *
 *   {"method": "io.cloudapp.Ticketd.GetTicket",
 *    "parameters": {"user": "alice"}, "more": true}
 *
 * and every reply is {"parameters": {...}} or {"error": NAME, "parameters":
 * {...}}.  With "more": true the daemon may send several replies; every
 * reply but the last carries "continues": true.  The code here is shared by
 * all three programs and depends only on libc and json-c, because the PAM
 * module links it into every login process.
 */

#ifndef CLOUDAPP_PROTOCOL_H
#define CLOUDAPP_PROTOCOL_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest message, NUL excluded.  A ticket is a few KiB of base64. */
#define CLOUDAPP_MESSAGE_MAX ((size_t)64 * 1024)

/* Deepest JSON nesting accepted in a message. */
#define CLOUDAPP_MESSAGE_DEPTH_MAX 8

#define CLOUDAPP_INTERFACE "io.cloudapp.Ticketd"

/*
 * Starts the ticket task for "user" and replies at once with the task state.
 * With "wait": true the reply comes when the task is ready or failed, after
 * progress replies when the call sets "more".  A running or ready task for
 * the same user is reused.
 */
#define CLOUDAPP_METHOD_START_TICKET CLOUDAPP_INTERFACE ".StartTicket"

/*
 * Hands out the ticket for "user", starting a task when none is running.
 * With "more" the daemon sends progress replies until the ticket is ready.
 * A ticket is handed out once and then forgotten.
 */
#define CLOUDAPP_METHOD_GET_TICKET CLOUDAPP_INTERFACE ".GetTicket"

/* Drops the task or unclaimed ticket of "user". */
#define CLOUDAPP_METHOD_DROP_TICKET CLOUDAPP_INTERFACE ".DropTicket"

/* Reports the daemon's state; non-root callers see only their own task. */
#define CLOUDAPP_METHOD_GET_STATUS CLOUDAPP_INTERFACE ".GetStatus"

/* {"user": NAME}: the EndUserId and the request parameters a ticket for
 * NAME would use, without any cloud call. */
#define CLOUDAPP_METHOD_RESOLVE_USER CLOUDAPP_INTERFACE ".ResolveUser"

/* Error names carried in the "error" member of a reply. */
#define CLOUDAPP_ERROR_INVALID_MESSAGE CLOUDAPP_INTERFACE ".InvalidMessage"
#define CLOUDAPP_ERROR_METHOD_NOT_FOUND "org.varlink.service.MethodNotFound"
#define CLOUDAPP_ERROR_INVALID_PARAMETER "org.varlink.service.InvalidParameter"
#define CLOUDAPP_ERROR_PERMISSION_DENIED CLOUDAPP_INTERFACE ".PermissionDenied"
#define CLOUDAPP_ERROR_NO_SUCH_USER CLOUDAPP_INTERFACE ".NoSuchUser"
#define CLOUDAPP_ERROR_INVALID_END_USER_ID CLOUDAPP_INTERFACE ".InvalidEndUserId"
#define CLOUDAPP_ERROR_CLOUD CLOUDAPP_INTERFACE ".CloudError"
#define CLOUDAPP_ERROR_UNTRUSTED_ENDPOINT \
	CLOUDAPP_INTERFACE ".UntrustedEndpoint"
#define CLOUDAPP_ERROR_TASK_FAILED CLOUDAPP_INTERFACE ".TaskFailed"
#define CLOUDAPP_ERROR_TIMEOUT CLOUDAPP_INTERFACE ".Timeout"
#define CLOUDAPP_ERROR_NO_TICKET CLOUDAPP_INTERFACE ".NoTicket"
#define CLOUDAPP_ERROR_INTERNAL CLOUDAPP_INTERFACE ".InternalError"
#define CLOUDAPP_ERROR_LIMIT_EXCEEDED CLOUDAPP_INTERFACE ".LimitExceeded"

/* Accumulates bytes read from a socket and splits them into messages. */
struct cloudapp_msgbuf {
	char *data;
	size_t len;
	size_t cap;
};

void cloudapp_msgbuf_init(struct cloudapp_msgbuf *buf);

/* Frees the buffer after wiping it, because it may have held a ticket. */
void cloudapp_msgbuf_free(struct cloudapp_msgbuf *buf);

/*
 * Appends n bytes.  Returns 0, -ENOMEM, or -EMSGSIZE when the pending
 * message is already longer than CLOUDAPP_MESSAGE_MAX.
 */
int cloudapp_msgbuf_feed(struct cloudapp_msgbuf *buf, const void *bytes,
			 size_t n);

/*
 * Takes the next complete message out of the buffer.  Returns 1 and sets
 * *ret_message (a JSON object the caller puts), 0 when no complete message
 * is buffered, -EBADMSG when the message is not a JSON object or not valid
 * UTF-8, or -EMSGSIZE when it is too long.
 */
int cloudapp_msgbuf_next(struct cloudapp_msgbuf *buf,
			 json_object **ret_message);

/*
 * Serializes a message for the wire, NUL included.  Returns a malloc'd
 * buffer and its length in *ret_len, or NULL on allocation failure.
 */
char *cloudapp_message_serialize(json_object *message, size_t *ret_len);

/* Builds a call; takes ownership of parameters (which may be NULL). */
json_object *cloudapp_call_new(const char *method, json_object *parameters,
			       bool more);

/*
 * Reads the parts of a reply.  *ret_error is the error name or NULL,
 * *ret_parameters is borrowed from reply (never NULL for a valid reply).
 * Returns 0 or -EBADMSG when reply does not have the shape of a reply.
 */
int cloudapp_reply_parse(json_object *reply, const char **ret_error,
			 json_object **ret_parameters, bool *ret_continues);

/*
 * Returns the string member key of object, or NULL when it is missing or
 * not a string.
 */
const char *cloudapp_json_string(json_object *object, const char *key);

/*
 * Checks a Linux user name before it goes on the wire: 1 to 256 bytes, no
 * control characters, no '/', not "." or "..".  Returns true when valid.
 */
bool cloudapp_user_name_valid(const char *name);

/*
 * Maximum reconnects per call.  The client connects again and resends its
 * call when the daemon closes the connection before the final reply, as it
 * does when it stops, crashes or is restarted.
 */
#define CLOUDAPP_CLIENT_RECONNECTS_MAX 1

/* Room for the reason that connect rejected a socket as untrusted. */
#define CLOUDAPP_UNTRUSTED_REASON_MAX 160

/* A blocking connection to the daemon in which every step has a deadline. */
struct cloudapp_client {
	int fd;
	uint64_t deadline_usec; /* CLOCK_MONOTONIC, in microseconds */
	struct cloudapp_msgbuf buf;
	/* Reason connect rejected the socket as untrusted, or NULL.  It
	 * points to a constant string or to untrusted_reason. */
	const char *untrusted;
	char untrusted_reason[CLOUDAPP_UNTRUSTED_REASON_MAX];
	char *path;
	/* The last call as sent, kept to send it again after a reconnect. */
	char *call;
	size_t call_len;
	/* Reconnects tried during the current call, whether or not they
	 * succeeded; callers log that one happened. */
	unsigned reconnects;
};

/* Returns the current CLOCK_MONOTONIC time in microseconds. */
uint64_t cloudapp_now_usec(void);

/*
 * Connects to the daemon at path.  Every later step on this client fails
 * with -ETIMEDOUT once timeout_ms have passed from now (0: no deadline).
 * The socket must be trustworthy, since the module and cloudappctl send
 * user names and receive tickets over it: a socket, in a folder owned by
 * root that group and others cannot write, whose listening process runs
 * as root or as the service user CLOUDAPP_SERVICE_USER.  Otherwise returns
 * -EPERM with the reason in client->untrusted.
 * Returns 0 or a negative errno; on failure no descriptor is left open.
 */
int cloudapp_client_connect(struct cloudapp_client *client, const char *path,
			    int timeout_ms);

/*
 * Sends a call; takes ownership of parameters.  A connection the daemon
 * already closed is opened again once, as in cloudapp_client_receive().
 */
int cloudapp_client_send(struct cloudapp_client *client, const char *method,
			 json_object *parameters, bool more);

/*
 * Waits for the next reply within the deadline.  When the daemon closes
 * the connection before the final reply, connects again and resends the
 * call, up to CLOUDAPP_CLIENT_RECONNECTS_MAX times, and goes on waiting.
 * Returns 0 and a reply the caller puts in *ret_reply, or -ETIMEDOUT,
 * -ECONNRESET (the daemon closed the connection again), -EPERM (the new
 * connection is untrusted), -EBADMSG or -EMSGSIZE.
 */
int cloudapp_client_receive(struct cloudapp_client *client,
			    json_object **ret_reply);

/* Closes the connection and wipes the buffer; safe to call twice. */
void cloudapp_client_close(struct cloudapp_client *client);

#endif
