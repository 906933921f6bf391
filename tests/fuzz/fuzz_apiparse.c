/* libFuzzer target: API request bodies (src/apiparse.h). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "apiparse.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t je;
    json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &je);
    if (!body)
        return 0;
    if (json_is_object(body)) {
        char err[256], phone[PHONE_MAX];
        struct provision_req req;
        if (apiparse_provision(body, &req, phone, err, sizeof err) == 0) {
            /* a phone, when given, is 8-15 digits in the caller's buffer */
            if (req.phone) {
                size_t l = strlen(req.phone);
                if (req.phone != phone || l < 8 || l > 15 || strspn(req.phone, "0123456789") != l)
                    abort();
            }
            if (req.login != LOGIN_QR && req.login != LOGIN_PAIRING)
                abort();
            if (req.login == LOGIN_PAIRING && !req.phone)
                abort();
        }
        if (apiparse_pair(body, phone, err, sizeof err) == 0) {
            size_t l = strlen(phone);
            if (l < 8 || l > 15)
                abort();
        }
        const char *name = NULL;
        if (apiparse_tenant(body, &name, err, sizeof err) == 0) {
            size_t l = name ? strlen(name) : 0;
            if (l < 1 || l > 64 ||
                strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != l)
                abort();
        }
        const char *url = NULL;
        if (apiparse_proxy(body, &url, err, sizeof err) == 0) {
            if (!url || strncmp(url, "socks5h://", 10) != 0)
                abort();
        }
        struct send_req sr;
        if (apiparse_send(body, &sr, phone, err, sizeof err) == 0) {
            /* to is 8-15 digits in the caller's buffer; message is 1..4096 characters */
            size_t l = strlen(sr.to);
            if (sr.to != phone || l < 8 || l > 15 || strspn(sr.to, "0123456789") != l)
                abort();
            size_t chars = 0;
            for (const char *p = sr.text; *p; p++)
                chars += ((unsigned char)*p & 0xC0) != 0x80;
            if (chars < 1 || chars > MSG_CHARS_MAX)
                abort();
            if (sr.idem_key && (!*sr.idem_key || strlen(sr.idem_key) > 128 || strchr(sr.idem_key, ' ')))
                abort();
            if (sr.ttl_s < 0 || sr.ttl_s > 604800)
                abort();
        }
    }
    json_decref(body);
    return 0;
}
