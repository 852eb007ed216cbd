/*
 * Wire protocol framing tests: NUL-separated messages, size limits,
 * malformed input and user name checks.
 */

#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "protocol.h"
#include "util.h"

static void feed(struct cloudapp_msgbuf *buf, const char *bytes, size_t n)
{
	assert_int_equal(cloudapp_msgbuf_feed(buf, bytes, n), 0);
}

static void two_messages_one_read(void **state)
{
	static const char wire[] = "{\"a\":1}\0{\"b\":2}";
	struct cloudapp_msgbuf buf;
	json_object *m;

	cloudapp_msgbuf_init(&buf);
	feed(&buf, wire, sizeof(wire));
	assert_int_equal(cloudapp_msgbuf_next(&buf, &m), 1);
	assert_non_null(json_object_object_get(m, "a"));
	json_object_put(m);
	assert_int_equal(cloudapp_msgbuf_next(&buf, &m), 1);
	assert_non_null(json_object_object_get(m, "b"));
	json_object_put(m);
	assert_int_equal(cloudapp_msgbuf_next(&buf, &m), 0);
	cloudapp_msgbuf_free(&buf);
}

static void message_split_across_reads(void **state)
{
	struct cloudapp_msgbuf buf;
	json_object *m;

	cloudapp_msgbuf_init(&buf);
	feed(&buf, "{\"meth", 6);
	assert_int_equal(cloudapp_msgbuf_next(&buf, &m), 0);
	feed(&buf, "od\":\"x\"}", 8);
	assert_int_equal(cloudapp_msgbuf_next(&buf, &m), 0);
	feed(&buf, "", 1);
	assert_int_equal(cloudapp_msgbuf_next(&buf, &m), 1);
	assert_string_equal(cloudapp_json_string(m, "method"), "x");
	json_object_put(m);
	cloudapp_msgbuf_free(&buf);
}

static void malformed_messages(void **state)
{
	static const char *const bad[] = {
		"[1,2]", "\"text\"", "{\"a\":", "{} trailing", "{\"a\":\"\xff\"}",
		"{\"a\":[[[[[[[[[[[[1]]]]]]]]]]]]}", "",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct cloudapp_msgbuf buf;
		json_object *m = NULL;

		cloudapp_msgbuf_init(&buf);
		feed(&buf, bad[i], strlen(bad[i]) + 1);
		assert_int_equal(cloudapp_msgbuf_next(&buf, &m), -EBADMSG);
		assert_null(m);
		cloudapp_msgbuf_free(&buf);
	}
}

/* Byte sequences that json-c 0.16 accepts as UTF-8 although they are
 * not: overlong forms, a surrogate and a code point past U+10FFFF.  Each
 * is rejected, and the message after it still reads. */
static void invalid_utf8_rejected(void **state)
{
	static const char *const bad[] = {
		"{\"user\":\"al\xc1\xa9" "ce\"}",
		"{\"user\":\"\xc0\xaf\"}",
		"{\"user\":\"a\xed\xa0\x80\"}",
		"{\"a\xf4\x90\x80\x80\":1}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct cloudapp_msgbuf buf;
		json_object *m = NULL;

		cloudapp_msgbuf_init(&buf);
		feed(&buf, bad[i], strlen(bad[i]) + 1);
		feed(&buf, "{\"b\":\"\xc3\xa9\"}", 11);
		assert_int_equal(cloudapp_msgbuf_next(&buf, &m), -EBADMSG);
		assert_null(m);
		assert_int_equal(cloudapp_msgbuf_next(&buf, &m), 1);
		assert_string_equal(cloudapp_json_string(m, "b"), "\xc3\xa9");
		json_object_put(m);
		cloudapp_msgbuf_free(&buf);
	}
}

static void oversized_message(void **state)
{
	struct cloudapp_msgbuf buf;
	char *big = malloc(CLOUDAPP_MESSAGE_MAX + 2);
	json_object *m;
	int r = 0;

	memset(big, ' ', CLOUDAPP_MESSAGE_MAX + 2);
	cloudapp_msgbuf_init(&buf);
	for (size_t off = 0; off < CLOUDAPP_MESSAGE_MAX + 2 && r == 0;
	     off += 1000)
		r = cloudapp_msgbuf_feed(&buf, big + off,
					 CLOUDAPP_MESSAGE_MAX + 2 - off < 1000 ?
						 CLOUDAPP_MESSAGE_MAX + 2 - off :
						 1000);
	if (r == 0)
		r = cloudapp_msgbuf_next(&buf, &m);
	assert_int_equal(r, -EMSGSIZE);
	cloudapp_msgbuf_free(&buf);
	free(big);
}

static void serialize_round_trip(void **state)
{
	json_object *call = cloudapp_call_new(CLOUDAPP_METHOD_GET_TICKET,
					      json_object_new_object(), true);
	struct cloudapp_msgbuf buf;
	json_object *m;
	size_t len;
	char *wire = cloudapp_message_serialize(call, &len);

	assert_int_equal(wire[len - 1], '\0');
	cloudapp_msgbuf_init(&buf);
	feed(&buf, wire, len);
	assert_int_equal(cloudapp_msgbuf_next(&buf, &m), 1);
	assert_string_equal(cloudapp_json_string(m, "method"),
			    CLOUDAPP_METHOD_GET_TICKET);
	json_object_put(m);
	json_object_put(call);
	free(wire);
	cloudapp_msgbuf_free(&buf);
}

static void reply_shapes(void **state)
{
	json_object *reply = json_tokener_parse(
		"{\"error\":\"x.Y\",\"parameters\":{\"message\":\"m\"},"
		"\"continues\":true}");
	json_object *bad = json_tokener_parse("{\"parameters\":[]}");
	json_object *parameters;
	const char *error;
	bool continues;

	assert_int_equal(cloudapp_reply_parse(reply, &error, &parameters,
					      &continues),
			 0);
	assert_string_equal(error, "x.Y");
	assert_true(continues);
	assert_int_equal(cloudapp_reply_parse(bad, &error, &parameters,
					      &continues),
			 -EBADMSG);
	json_object_put(reply);
	json_object_put(bad);
}

static void user_names(void **state)
{
	assert_true(cloudapp_user_name_valid("alice"));
	assert_true(cloudapp_user_name_valid("alice@corp.example"));
	assert_true(cloudapp_user_name_valid("CORP\\alice"));
	assert_false(cloudapp_user_name_valid(""));
	assert_false(cloudapp_user_name_valid(NULL));
	assert_false(cloudapp_user_name_valid("a/b"));
	assert_false(cloudapp_user_name_valid(".."));
	assert_false(cloudapp_user_name_valid("al\nice"));
	assert_false(cloudapp_user_name_valid("al\x1b[31mice"));
	assert_true(cloudapp_user_name_valid("j\xc3\xbcrgen"));
	assert_false(cloudapp_user_name_valid("bad\xff"));
	assert_false(cloudapp_user_name_valid("c1\xc2\x9b" "control"));
}

static void embedded_nul_string(void **state)
{
	json_object *object = json_tokener_parse(
		"{\"user\":\"alice\\u0000x\",\"ok\":\"bob\"}");

	assert_non_null(object);
	assert_null(cloudapp_json_string(object, "user"));
	assert_string_equal(cloudapp_json_string(object, "ok"), "bob");
	json_object_put(object);
}

static void utf8_trim_cut_character(void **state)
{
	char two_bytes[] = "ab\xc3";
	char three_bytes[] = "ab\xe2\x82";
	char whole[] = "ab\xe2\x82\xac";
	char ascii[] = "abc";

	cloudapp_utf8_trim(two_bytes);
	assert_string_equal(two_bytes, "ab");
	cloudapp_utf8_trim(three_bytes);
	assert_string_equal(three_bytes, "ab");
	cloudapp_utf8_trim(whole);
	assert_string_equal(whole, "ab\xe2\x82\xac");
	cloudapp_utf8_trim(ascii);
	assert_string_equal(ascii, "abc");
}

static void seconds_parsing(void **state)
{
	int64_t ms = 0;

	assert_int_equal(cloudapp_parse_seconds("2", 60000, &ms), 0);
	assert_int_equal(ms, 2000);
	assert_int_equal(cloudapp_parse_seconds("0.25", 60000, &ms), 0);
	assert_int_equal(ms, 250);
	assert_int_equal(cloudapp_parse_seconds("61", 60000, &ms), -EINVAL);
	assert_int_equal(cloudapp_parse_seconds("abc", 60000, &ms), -EINVAL);
	assert_int_equal(cloudapp_parse_seconds("1.", 60000, &ms), -EINVAL);
	assert_int_equal(cloudapp_parse_seconds("-1", 60000, &ms), -EINVAL);
	assert_int_equal(cloudapp_parse_seconds("99999999999999999999", 60000,
						&ms),
			 -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(two_messages_one_read),
		cmocka_unit_test(message_split_across_reads),
		cmocka_unit_test(malformed_messages),
		cmocka_unit_test(invalid_utf8_rejected),
		cmocka_unit_test(oversized_message),
		cmocka_unit_test(serialize_round_trip),
		cmocka_unit_test(reply_shapes),
		cmocka_unit_test(user_names),
		cmocka_unit_test(embedded_nul_string),
		cmocka_unit_test(utf8_trim_cut_character),
		cmocka_unit_test(seconds_parsing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
