/*
 * unit/json.c - the admin API's JSON writer (cmd/zcrelay/json.c) and the
 * reader zcrelay ctl uses (json_parse.c): escapes, invalid UTF-8 written
 * as U+FFFD, commas, numbers; the reader takes back what the writer
 * wrote and refuses malformed text.
 */
#include <stdlib.h>
#include <string.h>

#include "runner.h"
#include "json.h"

TEST(test_json_write_read)
{
	static const char nasty[] =
	        "q\"b\\c\x01\x1f\x7f"
	        "\xc3\xa9 \xff\xc0\xaf \xed\xa0\x80 \xf0\x9f\x98\x80";
	static const char want[] =
	        "q\"b\\c\x01\x1f\x7f"
	        "\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd "
	        "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd "
	        "\xf0\x9f\x98\x80";
	struct zcr_json j = {0};
	const struct zcr_jv *a;
	struct zcr_jv *v;
	size_t len;
	char *text, buf[64];

	zcr_json_obj(&j);
	zcr_json_kstr(&j, "s", nasty);
	zcr_json_ku64(&j, "big", 18446744073709551615ULL);
	zcr_json_key(&j, "arr");
	zcr_json_arr(&j);
	zcr_json_i64(&j, -5);
	zcr_json_bool(&j, 1);
	zcr_json_str(&j, NULL);
	zcr_json_obj(&j);
	zcr_json_obj_end(&j);
	zcr_json_arr(&j);
	zcr_json_arr_end(&j);
	zcr_json_arr_end(&j);
	zcr_json_kbool(&j, "f", 0);
	zcr_json_obj_end(&j);
	text = zcr_json_done(&j, &len);
	ASSERT_TRUE(text != NULL);
	ASSERT_EQ(len, strlen(text));
	ASSERT_TRUE(strstr(text, "\"arr\":[-5,true,null,{},[]],\"f\":false}") !=
	            NULL);
	ASSERT_TRUE(strstr(text, "\\u0001\\u001f\\u007f") != NULL);
	v = zcr_json_parse(text);
	ASSERT_TRUE(v != NULL);
	ASSERT_STREQ(zcr_jv_get(v, "s")->str, want);
	ASSERT_STREQ(zcr_jv_text(zcr_jv_get(v, "f"), buf, sizeof(buf)),
	             "false");
	a = zcr_jv_get(v, "arr");
	ASSERT_TRUE(a && a->type == ZCR_JARR && a->n == 5);
	ASSERT_STREQ(zcr_jv_text(&a->kids[0], buf, sizeof(buf)), "-5");
	ASSERT_STREQ(zcr_jv_text(&a->kids[2], buf, sizeof(buf)), "-");
	ASSERT_TRUE(zcr_jv_get(v, "missing") == NULL);
	zcr_jv_free(v);
	free(text);
	return T_PASS;
}

/* Numbers at the edges: no inf or nan in the text (JSON has none), a
 * huge one written whole in exponent form, and ctl printing huge ones
 * without an out-of-range cast (UBSan). */
TEST(test_json_numbers_edges)
{
	struct zcr_json j = {0};
	struct zcr_jv *v;
	size_t len;
	char *text, buf[64];

	zcr_json_arr(&j);
	zcr_json_f(&j, 1.0 / 0.0);
	zcr_json_f(&j, 0.0 / 0.0);
	zcr_json_f(&j, 1e300);
	zcr_json_f(&j, -2.5);
	zcr_json_arr_end(&j);
	text = zcr_json_done(&j, &len);
	ASSERT_TRUE(text != NULL);
	ASSERT_STREQ(text, "[null,null,1.0000000000000001e+300,-2.500]\n");
	v = zcr_json_parse(text);
	ASSERT_TRUE(v != NULL && v->n == 4);
	ASSERT_TRUE(v->kids[2].num == 1e300);
	ASSERT_STREQ(zcr_jv_text(&v->kids[2], buf, sizeof(buf)), "1e+300");
	ASSERT_STREQ(zcr_jv_text(&v->kids[3], buf, sizeof(buf)), "-2.5");
	zcr_jv_free(v);
	free(text);
	v = zcr_json_parse("[-1e19, 9007199254740993]");
	ASSERT_TRUE(v != NULL);
	ASSERT_STREQ(zcr_jv_text(&v->kids[0], buf, sizeof(buf)), "-1e+19");
	ASSERT_STREQ(zcr_jv_text(&v->kids[1], buf, sizeof(buf)),
	             "9007199254740992");
	zcr_jv_free(v);
	return T_PASS;
}

TEST(test_json_read_bad)
{
	static const char *const bad[] = {
	        "",
	        "{",
	        "[1,]",
	        "{\"a\" 1}",
	        "{\"a\":1,}",
	        "tru",
	        "\"abc",
	        "\"\\x\"",
	        "\"\\ud800\"",
	        "1 2",
	        "\"a\x01\"",
	        "{1:2}",
	        "-",
	        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]"
	        "]]]]]]",
	};
	struct zcr_jv *v;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = zcr_json_parse(bad[i]);
		if (v)
			t_log("accepted: %s", bad[i]);
		ASSERT_TRUE(v == NULL);
	}
	v = zcr_json_parse(" {\"k\" : [ \"\\u00e9\\ud83d\\ude00\\n\" ] } ");
	ASSERT_TRUE(v != NULL);
	ASSERT_STREQ(zcr_jv_get(v, "k")->kids[0].str,
	             "\xc3\xa9\xf0\x9f\x98\x80\n");
	zcr_jv_free(v);
	return T_PASS;
}
