/*
 * Fuzzes the wire protocol as the daemon and the clients read it: bytes
 * from a socket go through cloudapp_msgbuf_feed() and _next(), and each
 * message is checked as a call (method, parameters, user name) and as a
 * reply.  Every message accepted must serialize and parse back to an
 * equal object.
 *
 * Input: one control byte, then the stream.  The control byte sets the
 * size of the chunks fed to the buffer, as recv() would split the
 * stream; 0xff feeds the stream, then CLOUDAPP_MESSAGE_MAX bytes without
 * a NUL, then the stream again, for the size limits.
 */

#include "config.h"

#include "fuzz.h"

#include <errno.h>
#include <string.h>

#include "protocol.h"
#include "util.h"

/* Control byte that repeats the stream past the message size limit. */
#define FUZZ_REPEAT 0xff

/* Chunk sizes are 1 + control * FUZZ_CHUNK_STEP bytes. */
#define FUZZ_CHUNK_STEP 16

/* The chunk size of the filler in FUZZ_REPEAT mode. */
#define FUZZ_FILLER_CHUNK 4096

/* Checks that every key and string of a value is valid UTF-8, as
 * cloudapp_msgbuf_next() promises. */
static void check_utf8(json_object *value)
{
	switch (json_object_get_type(value)) {
	case json_type_string:
		FUZZ_ASSERT(cloudapp_utf8_valid(
			json_object_get_string(value),
			(size_t)json_object_get_string_len(value)));
		break;
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(value); i++)
			check_utf8(json_object_array_get_idx(value, i));
		break;
	case json_type_object: {
		json_object_object_foreach(value, key, member)
		{
			FUZZ_ASSERT(cloudapp_utf8_valid(key, strlen(key)));
			check_utf8(member);
		}
		break;
	}
	default:
		break;
	}
}

/* Checks a message the way connection_dispatch() reads a call. */
static void check_call(json_object *message)
{
	const char *method = cloudapp_json_string(message, "method");
	json_object *parameters = NULL;
	const char *user;

	if (method)
		FUZZ_ASSERT(strlen(method) ==
			    (size_t)json_object_get_string_len(
				    json_object_object_get(message, "method")));
	if (!json_object_object_get_ex(message, "parameters", &parameters) ||
	    !json_object_is_type(parameters, json_type_object))
		return;
	user = cloudapp_json_string(parameters, "user");
	if (!cloudapp_user_name_valid(user))
		return;
	FUZZ_ASSERT(strlen(user) >= 1);
	FUZZ_ASSERT(strlen(user) <= CLOUDAPP_USER_NAME_MAX);
	FUZZ_ASSERT(!strchr(user, '/'));
	FUZZ_ASSERT(strcmp(user, ".") != 0 && strcmp(user, "..") != 0);
	FUZZ_ASSERT(cloudapp_utf8_valid(user, strlen(user)));
	for (const char *p = user; *p; p++)
		FUZZ_ASSERT((unsigned char)*p >= 0x20 && *p != 0x7f);
}

/* Checks a message the way the PAM module and cloudappctl read a reply. */
static void check_reply(json_object *message)
{
	json_object *parameters = NULL;
	const char *error = NULL;
	bool continues = false;

	if (cloudapp_reply_parse(message, &error, &parameters, &continues) < 0)
		return;
	FUZZ_ASSERT(parameters);
	FUZZ_ASSERT(json_object_is_type(parameters, json_type_object));
	if (error)
		FUZZ_ASSERT(json_object_is_type(
			json_object_object_get(message, "error"),
			json_type_string));
}

/* Serializes message and reads it back through a fresh buffer. */
static void check_round_trip(json_object *message)
{
	struct cloudapp_msgbuf buf;
	json_object *copy = NULL;
	size_t len = 0;
	char *wire;
	int r;

	wire = cloudapp_message_serialize(message, &len);
	FUZZ_ASSERT(wire);
	FUZZ_ASSERT(len >= 1 && wire[len - 1] == '\0');
	FUZZ_ASSERT(strlen(wire) == len - 1);

	/* The size limit would reject a message that grew when
	 * serialized, so only those within it are read back. */
	if (len - 1 > CLOUDAPP_MESSAGE_MAX) {
		free(wire);
		return;
	}
	cloudapp_msgbuf_init(&buf);
	FUZZ_ASSERT(cloudapp_msgbuf_feed(&buf, wire, len) == 0);
	r = cloudapp_msgbuf_next(&buf, &copy);
	FUZZ_ASSERT(r == 1);
	FUZZ_ASSERT(json_object_equal(message, copy));
	FUZZ_ASSERT(buf.len == 0);
	json_object_put(copy);
	cloudapp_msgbuf_free(&buf);
	free(wire);
}

/* Takes the buffered messages; returns false when the buffer reports
 * a size error, after which the daemon closes the connection. */
static bool drain(struct cloudapp_msgbuf *buf)
{
	for (;;) {
		json_object *message = NULL;
		int r = cloudapp_msgbuf_next(buf, &message);

		if (r == 0)
			return true;
		if (r == -EBADMSG) {
			FUZZ_ASSERT(!message);
			continue;
		}
		if (r < 0) {
			FUZZ_ASSERT(r == -EMSGSIZE);
			FUZZ_ASSERT(!message);
			return false;
		}
		FUZZ_ASSERT(r == 1);
		FUZZ_ASSERT(json_object_is_type(message, json_type_object));
		check_utf8(message);
		check_call(message);
		check_reply(message);
		check_round_trip(message);
		json_object_put(message);
	}
}

/* Feeds size bytes in chunks, draining after each; returns false once
 * the buffer rejected the stream. */
static bool feed(struct cloudapp_msgbuf *buf, const uint8_t *data,
		 size_t size, size_t chunk)
{
	for (size_t offset = 0; offset < size;) {
		size_t n = size - offset < chunk ? size - offset : chunk;
		int r = cloudapp_msgbuf_feed(buf, data + offset, n);

		if (r < 0) {
			FUZZ_ASSERT(r == -EMSGSIZE);
			return false;
		}
		offset += n;
		if (!drain(buf))
			return false;
	}
	return true;
}

/* Feeds one message's worth of bytes without a NUL. */
static bool feed_filler(struct cloudapp_msgbuf *buf)
{
	static uint8_t filler[FUZZ_FILLER_CHUNK];

	memset(filler, 'x', sizeof(filler));
	for (size_t fed = 0; fed <= CLOUDAPP_MESSAGE_MAX; fed += sizeof(filler))
		if (!feed(buf, filler, sizeof(filler), sizeof(filler)))
			return false;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cloudapp_msgbuf buf;
	size_t chunk;
	bool repeat;

	if (size < 1)
		return 0;
	repeat = data[0] == FUZZ_REPEAT;
	chunk = 1 + (size_t)data[0] * FUZZ_CHUNK_STEP;
	data++;
	size--;

	cloudapp_msgbuf_init(&buf);
	if (feed(&buf, data, size, chunk) && repeat && feed_filler(&buf))
		feed(&buf, data, size, chunk);
	cloudapp_msgbuf_free(&buf);
	return 0;
}
