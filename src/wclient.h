/* wclient: signed commands from the daemon to one worker (SPEC §5), over httpc. */
#ifndef SB_WCLIENT_H
#define SB_WCLIENT_H

#include <stddef.h>

#include "httpc.h"

/* key: the worker's own key (hex). body NULL for GET. cb as for httpc. 0 or -1. */
int wclient_call(const char *address, const char *key, const char *method, const char *path,
                 const char *body, long timeout_ms, httpc_cb cb, void *arg);

/* The worker's own key: hex HMAC-SHA256(master, session). out holds 65 bytes. */
void wclient_worker_key(const char *master, const char *session, char *out);

/* 0 when the X-Timestamp / X-Signature pair signs body with key and the time is within
 * max_skew_s of now_s; -1 otherwise. Pure. */
int wclient_verify(const char *key, const char *ts, const char *sig, const char *body,
                   size_t len, long now_s, long max_skew_s);
struct hmac_key;
/* the same with a key prepared by hmac_key_new */
int wclient_verify_key(const struct hmac_key *key, const char *ts, const char *sig, const char *body,
                       size_t len, long now_s, long max_skew_s);

#endif
