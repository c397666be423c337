/* One attempt's request to one target: URL, headers and body in the
 * provider's format (through the translation library), plus what the
 * answer's translation will need to know. */
#ifndef AIP_UPSTREAM_H
#define AIP_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "aip_conf.h"
#include "translate.h"

typedef enum { AIP_OP_CHAT, AIP_OP_EMBED } aip_op_t;

#define AIP_MAX_HEADERS 12

typedef struct aip_upreq {
    json_t *json;            /* the body as sent (the mock reads this one); NULL when only the text was built */
    char *body;
    size_t body_len;
    const char *url;         /* the target's; NULL for mock */
    bool client_wants_usage; /* OpenAI wire: the client itself asked for the usage chunk */
    char *secret;            /* the header value carrying the key; freed (and wiped) with the request */
    const char *headers[2 * AIP_MAX_HEADERS + 1];
} aip_upreq_t;

/* 0, or -1 and a message in err when this target cannot take the request
 * (translation refused it, or no embeddings endpoint): the caller moves on
 * to the next target. key: index into t->keys. raw (raw_len bytes) is the
 * client's body req was parsed from: an OpenAI-format target gets it with
 * only the model changed, without a jansson round trip; req may then be
 * NULL (see AIP_UPREQ_NEEDS_JSON). scan, when not NULL, is raw already
 * validated and read (ai_chat_scan): not read again. */
/* aip_upreq_build's answer when the target needs the parsed body and req is
 * NULL: parse raw and call again. */
#define AIP_UPREQ_NEEDS_JSON (-2)

int aip_upreq_build(aip_upreq_t *u, const aip_conf_t *c, const aip_target_t *t, int key, aip_op_t op,
                    const json_t *req, const ai_chat_scan_t *scan, const char *raw, size_t raw_len, bool stream,
                    char *err, size_t errlen);
void aip_upreq_free(aip_upreq_t *u);

#endif
