/* Unit tests of the pure parts of outbound calls: the job state machine (callfsm.h),
 * the CSV reader of lead imports (csv.h) and Twilio's signature, dates and call
 * resources (twilio.h). */
#include <string.h>

#include "callfsm.h"
#include "csv.h"
#include "tap.h"
#include "twilio.h"

static void test_fsm(void)
{
    CHECK_EQ_INT(callfsm_from_twilio("queued"), CS_DIALING, "queued is dialing");
    CHECK_EQ_INT(callfsm_from_twilio("initiated"), CS_DIALING, "initiated is dialing");
    CHECK_EQ_INT(callfsm_from_twilio("ringing"), CS_RINGING, "ringing");
    CHECK_EQ_INT(callfsm_from_twilio("in-progress"), CS_IN_PROGRESS, "in-progress");
    CHECK_EQ_INT(callfsm_from_twilio("no-answer"), CS_NO_ANSWER, "no-answer");
    CHECK_EQ_INT(callfsm_from_twilio("canceled"), CS_CANCELED, "canceled");
    CHECK_EQ_INT(callfsm_from_twilio("in_progress"), -1, "our own spelling is not Twilio's");
    CHECK_EQ_INT(callfsm_from_twilio(""), -1, "empty is unknown");
    for (int i = 0; i < CS__COUNT; i++)
        CHECK_EQ_INT(call_status_parse(call_status_name((enum call_status)i)), i, "name round trip %d", i);
    CHECK(callfsm_is_active(CS_DIALING) && callfsm_is_active(CS_RINGING) && callfsm_is_active(CS_IN_PROGRESS),
          "dialing, ringing and in progress hold a slot");
    CHECK(!callfsm_is_active(CS_QUEUED) && !callfsm_is_active(CS_COMPLETED), "queued and finished hold none");
    /* forward only */
    CHECK_EQ_INT(callfsm_step(CS_DIALING, CS_RINGING), CS_RINGING, "dialing -> ringing");
    CHECK_EQ_INT(callfsm_step(CS_RINGING, CS_IN_PROGRESS), CS_IN_PROGRESS, "ringing -> in progress");
    CHECK_EQ_INT(callfsm_step(CS_IN_PROGRESS, CS_RINGING), -1, "a late ringing is ignored");
    CHECK_EQ_INT(callfsm_step(CS_RINGING, CS_RINGING), -1, "a repeat is ignored");
    CHECK_EQ_INT(callfsm_step(CS_DIALING, CS_COMPLETED), CS_COMPLETED, "straight to completed");
    CHECK_EQ_INT(callfsm_step(CS_IN_PROGRESS, CS_BUSY), CS_BUSY, "any terminal ends it");
    for (int t = CS_COMPLETED; t < CS__COUNT; t++)
        for (int in = 0; in < CS__COUNT; in++)
            CHECK_EQ_INT(callfsm_step((enum call_status)t, (enum call_status)in), -1,
                         "terminal %s never changes (%s)", call_status_name((enum call_status)t),
                         call_status_name((enum call_status)in));
    CHECK_EQ_INT(callfsm_step(CS_QUEUED, CS_COMPLETED), -1, "a queued job was not dialled: ignored");
    CHECK(callfsm_retryable(CS_BUSY) && callfsm_retryable(CS_NO_ANSWER) && !callfsm_retryable(CS_FAILED),
          "busy and no-answer may be retried, failed not");
}

static void test_csv(void)
{
    static const char text[] = "\xEF\xBB\xBFname,phone,timezone\r\n"
                               "\"Cohen, Dana\",+972501234567,Asia/Jerusalem\r\n"
                               "\n"
                               "\"He said \"\"hi\"\"\",972501234568,\n"
                               "\"multi\nline\",1\n"
                               "\"open,2\n";
    struct csv c;
    char f[CSV_FIELDS_MAX][CSV_FIELD_BYTES], err[100];
    int line;
    csv_init(&c, text, sizeof text - 1);
    CHECK_EQ_INT(csv_next(&c, f, &line, err, sizeof err), 3, "header: 3 fields (BOM skipped)");
    CHECK_EQ_STR(f[0], "name", "first header field");
    CHECK_EQ_INT(line, 1, "header on line 1");
    CHECK_EQ_INT(csv_next(&c, f, &line, err, sizeof err), 3, "a quoted comma");
    CHECK_EQ_STR(f[0], "Cohen, Dana", "the comma is inside the field");
    CHECK_EQ_STR(f[2], "Asia/Jerusalem", "CR is not part of the last field");
    CHECK_EQ_INT(line, 2, "line 2");
    CHECK_EQ_INT(csv_next(&c, f, &line, err, sizeof err), 3, "doubled quotes");
    CHECK_EQ_STR(f[0], "He said \"hi\"", "\"\" is a quote");
    CHECK_EQ_STR(f[2], "", "an empty last field");
    CHECK_EQ_INT(line, 4, "the empty line 3 is skipped");
    CHECK_EQ_INT(csv_next(&c, f, &line, err, sizeof err), 2, "a quoted newline");
    CHECK_EQ_STR(f[0], "multi\nline", "the newline is kept");
    CHECK_EQ_INT(csv_next(&c, f, &line, err, sizeof err), -1, "an unclosed quote is an error");
    CHECK_EQ_INT(line, 7, "reported on the line it starts (after the 2-line record)");
    CHECK(strstr(err, "not closed") != NULL, "the error says why: %s", err);
    CHECK_EQ_INT(csv_next(&c, f, &line, err, sizeof err), 0, "the end");

    char big[400];
    memset(big, 'x', 300);
    memcpy(big + 300, ",1\nok,2\n", 9);
    csv_init(&c, big, strlen(big));
    CHECK_EQ_INT(csv_next(&c, f, &line, err, sizeof err), -1, "a field over the cap is refused");
    CHECK_EQ_INT(csv_next(&c, f, &line, err, sizeof err), 2, "and the next line still reads");
    CHECK_EQ_STR(f[0], "ok", "the next line's field");
    CHECK_EQ_INT(line, 2, "on line 2");
    csv_init(&c, "a,b,c,d,e,f,g,h,i\n", 18);
    CHECK_EQ_INT(csv_next(&c, f, &line, err, sizeof err), -1, "more than %d fields is refused", CSV_FIELDS_MAX);
    csv_init(&c, "", 0);
    CHECK_EQ_INT(csv_next(&c, f, &line, err, sizeof err), 0, "empty text: no record");

    /* a record refused inside a quoted field is skipped whole: the rest of that field,
     * on its next line, is not read as a record of its own */
    char multi[600];
    int n = snprintf(multi, sizeof multi, "\"Alice ");
    memset(multi + n, 'x', 300);
    n += 300;
    n += snprintf(multi + n, sizeof multi - (size_t)n, "\nBob\",+15551234567\nCarol,+15557654321\n");
    csv_init(&c, multi, (size_t)n);
    CHECK_EQ_INT(csv_next(&c, f, &line, err, sizeof err), -1, "a quoted field over the cap is refused");
    CHECK_EQ_INT(line, 1, "the refused record starts on line 1");
    CHECK_EQ_INT(csv_next(&c, f, &line, err, sizeof err), 2, "the next record is the one after it");
    CHECK_EQ_STR(f[0], "Carol", "not the tail of the refused one");
    CHECK_EQ_INT(line, 3, "on line 3");
    static const char nul[] = "\"a\0b\nc\",1\nd,2\n";
    csv_init(&c, nul, sizeof nul - 1);
    CHECK_EQ_INT(csv_next(&c, f, &line, err, sizeof err), -1, "a NUL in a quoted field is refused");
    CHECK_EQ_INT(csv_next(&c, f, &line, err, sizeof err), 2, "the record after it reads");
    CHECK_EQ_STR(f[0], "d", "the record after the refused one");

    /* a quote inside a field that does not start with one (RFC 4180) */
    csv_init(&c, "Bob\",+15551234567\nok,1\n", 23);
    CHECK_EQ_INT(csv_next(&c, f, &line, err, sizeof err), -1, "a bare quote is refused");
    CHECK(strstr(err, "quote") != NULL, "the error says why: %s", err);
    CHECK_EQ_INT(csv_next(&c, f, &line, err, sizeof err), 2, "the next line reads");
    CHECK_EQ_STR(f[0], "ok", "the next line's field");
    /* text after a closing quote: the rest of the record is skipped, a later quoted
     * field of it with its line end included */
    static const char after[] = "\"a\"b,\"c\nd\"\nok,1\n";
    csv_init(&c, after, sizeof after - 1);
    CHECK_EQ_INT(csv_next(&c, f, &line, err, sizeof err), -1, "text after a closing quote is refused");
    CHECK_EQ_INT(csv_next(&c, f, &line, err, sizeof err), 2, "the record after it reads");
    CHECK_EQ_STR(f[0], "ok", "the record after the refused one, not the tail of its quoted field");
    CHECK_EQ_INT(line, 3, "on line 3");
}

static void test_twilio(void)
{
    /* the example of Twilio's security documentation */
    const char *keys[] = {"To", "Caller", "From", "Digits", "CallSid"};
    const char *vals[] = {"+18005551212", "+12349013030", "+12349013030", "1234", "CA1234567890ABCDE"};
    char sig[64];
    twilio_signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", keys, vals, 5, sig);
    CHECK_EQ_STR(sig, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=", "the documented signature");
    twilio_signature("12346", "https://mycompany.com/myapp.php?foo=1&bar=2", keys, vals, 5, sig);
    CHECK(strcmp(sig, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=") != 0, "another token, another signature");
    vals[3] = "1235";
    twilio_signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", keys, vals, 5, sig);
    CHECK(strcmp(sig, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=") != 0, "another value, another signature");
    /* a repeated key: values in order */
    const char *rk[] = {"E", "E"}, *rv1[] = {"b", "a"}, *rv2[] = {"a", "b"};
    char s1[64], s2[64];
    twilio_signature("t", "https://x/y", rk, rv1, 2, s1);
    twilio_signature("t", "https://x/y", rk, rv2, 2, s2);
    CHECK_EQ_STR(s1, s2, "values of a repeated key are sorted");

    int64_t ms = 0;
    CHECK_EQ_INT(twilio_parse_date("Mon, 30 Nov 2026 10:00:00 +0000", &ms), 0, "an RFC 2822 date");
    CHECK(ms == 1796032800000LL, "is 2026-11-30T10:00:00Z (%lld)", (long long)ms);
    CHECK_EQ_INT(twilio_parse_date("Mon, 30 Nov 2026 12:00:00 +0200", &ms), 0, "with an offset");
    CHECK(ms == 1796032800000LL, "the same instant (%lld)", (long long)ms);
    CHECK_EQ_INT(twilio_parse_date("2026-11-30", &ms), -1, "another form is refused");
    CHECK_EQ_INT(twilio_parse_date("Mon, 30 Nov 2026 10:00:00 +0000 junk", &ms), -1, "trailing text is refused");

    struct twilio_call c;
    char err[120];
    static const char one[] = "{\"sid\":\"CA0123456789abcdef0123456789abcdef\",\"status\":\"in-progress\","
                              "\"to\":\"+972501234567\",\"date_created\":\"Mon, 30 Nov 2026 10:00:00 +0000\","
                              "\"duration\":\"42\"}";
    CHECK_EQ_INT(twilio_parse_call(one, sizeof one - 1, &c, err, sizeof err), 0, "a call resource");
    CHECK_EQ_STR(c.sid, "CA0123456789abcdef0123456789abcdef", "its sid");
    CHECK_EQ_STR(c.status, "in-progress", "its status");
    CHECK_EQ_INT(c.duration, 42, "its duration");
    CHECK(c.created_ms == 1796032800000LL, "its creation time");
    CHECK(!c.from[0] && !c.direction[0] && !c.child, "From, direction and parent left out: empty");
    static const char leg[] = "{\"sid\":\"CA01\",\"to\":\"+1555\",\"from\":\"+15005550006\","
                              "\"direction\":\"outbound-dial\",\"parent_call_sid\":\"CA02\"}";
    CHECK_EQ_INT(twilio_parse_call(leg, sizeof leg - 1, &c, err, sizeof err), 0, "a call leg");
    CHECK_EQ_STR(c.from, "+15005550006", "its From");
    CHECK_EQ_STR(c.direction, "outbound-dial", "its direction");
    CHECK(c.child, "a parent_call_sid makes it a leg");
    static const char top[] = "{\"sid\":\"CA01\",\"direction\":\"outbound-api\",\"parent_call_sid\":null}";
    CHECK_EQ_INT(twilio_parse_call(top, sizeof top - 1, &c, err, sizeof err), 0, "a call the API made");
    CHECK(!c.child, "parent_call_sid null: no leg");
    static const char bad[] = "{\"sid\":\"XX12\",\"status\":\"queued\"}";
    CHECK_EQ_INT(twilio_parse_call(bad, sizeof bad - 1, &c, err, sizeof err), -1, "a sid that is not CA... is refused");
    static const char list[] = "{\"calls\":[{\"sid\":\"CAaa\",\"to\":\"+1\"},{\"sid\":7},{\"sid\":\"CAbb\"}]}";
    struct twilio_call calls[4];
    CHECK_EQ_INT(twilio_parse_list(list, sizeof list - 1, calls, 4, err, sizeof err), 2, "a list: bad entries skipped");
    CHECK_EQ_STR(calls[1].sid, "CAbb", "the second good one");
    CHECK_EQ_INT(twilio_parse_list("[]", 2, calls, 4, err, sizeof err), -1, "not a list page");
    char text[200];
    static const char e[] = "{\"code\":21211,\"message\":\"The 'To' number is not valid\",\"status\":400}";
    twilio_error_text(400, e, sizeof e - 1, text, sizeof text);
    CHECK_EQ_STR(text, "Twilio 400 (error 21211): The 'To' number is not valid", "Twilio's message is kept");
    twilio_error_text(502, "<html>", 6, text, sizeof text);
    CHECK_EQ_STR(text, "Twilio answered HTTP 502", "no JSON: the status");
}

int main(void)
{
    test_fsm();
    test_csv();
    test_twilio();
    return TAP_DONE();
}
