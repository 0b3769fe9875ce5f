/* A small strict JSON parser (RFC 8259) and a string builder for the documents HCS exchanges. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

#define JSON_MAX_DEPTH 64

typedef struct {
  const char *p, *start;
  char *err;
  size_t errlen;
  int depth;
} jparser;

static void jerr(jparser *j, const char *what) {
  if (j->err && !j->err[0]) snprintf(j->err, j->errlen, "%s at offset %zu", what, (size_t)(j->p - j->start));
}

static void skip_ws(jparser *j) {
  while (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r') j->p++;
}

static jval *jnew(jtype t) {
  jval *v = calloc(1, sizeof *v);
  if (v) v->t = t;
  return v;
}

void json_free(jval *v) {
  if (!v) return;
  free(v->s);
  for (size_t i = 0; i < v->len; i++) {
    json_free(v->items[i]);
    if (v->keys) free(v->keys[i]);
  }
  free(v->items);
  free(v->keys);
  free(v);
}

static int hex4(const char *p, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return 0;
  }
  *out = v;
  return 1;
}

static void put_utf8(sbuf *b, unsigned c) {
  char t[4];
  size_t n;
  if (c < 0x80) t[0] = (char)c, n = 1;
  else if (c < 0x800) t[0] = (char)(0xC0 | (c >> 6)), t[1] = (char)(0x80 | (c & 0x3F)), n = 2;
  else if (c < 0x10000)
    t[0] = (char)(0xE0 | (c >> 12)), t[1] = (char)(0x80 | ((c >> 6) & 0x3F)), t[2] = (char)(0x80 | (c & 0x3F)), n = 3;
  else
    t[0] = (char)(0xF0 | (c >> 18)), t[1] = (char)(0x80 | ((c >> 12) & 0x3F)),
    t[2] = (char)(0x80 | ((c >> 6) & 0x3F)), t[3] = (char)(0x80 | (c & 0x3F)), n = 4;
  sb_putn(b, t, n);
}

/* Parses a string at j->p (which points at the opening quote). */
static char *parse_string(jparser *j, size_t *len) {
  sbuf b = {0};
  j->p++;
  for (;;) {
    unsigned char c = (unsigned char)*j->p;
    if (c == 0) {
      jerr(j, "unterminated string");
      goto fail;
    }
    if (c < 0x20) {
      jerr(j, "control character in string");
      goto fail;
    }
    if (c == '"') {
      j->p++;
      break;
    }
    if (c != '\\') {
      const char *s = j->p;
      while (*j->p && *j->p != '"' && *j->p != '\\' && (unsigned char)*j->p >= 0x20) j->p++;
      sb_putn(&b, s, (size_t)(j->p - s));
      continue;
    }
    j->p++;
    char e = *j->p++;
    switch (e) {
      case '"': sb_putn(&b, "\"", 1); break;
      case '\\': sb_putn(&b, "\\", 1); break;
      case '/': sb_putn(&b, "/", 1); break;
      case 'b': sb_putn(&b, "\b", 1); break;
      case 'f': sb_putn(&b, "\f", 1); break;
      case 'n': sb_putn(&b, "\n", 1); break;
      case 'r': sb_putn(&b, "\r", 1); break;
      case 't': sb_putn(&b, "\t", 1); break;
      case 'u': {
        unsigned u;
        if (!hex4(j->p, &u)) {
          jerr(j, "bad \\u escape");
          goto fail;
        }
        j->p += 4;
        if (u >= 0xD800 && u <= 0xDBFF && j->p[0] == '\\' && j->p[1] == 'u') {
          unsigned lo;
          if (hex4(j->p + 2, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
            j->p += 6;
            u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
          }
        }
        if (u >= 0xD800 && u <= 0xDFFF) u = 0xFFFD;
        put_utf8(&b, u);
        break;
      }
      default:
        j->p--;
        jerr(j, "bad escape");
        goto fail;
    }
  }
  if (b.oom) goto fail;
  *len = b.n;
  if (!b.p) {
    b.p = malloc(1);
    if (!b.p) return NULL;
    b.p[0] = 0;
  }
  return b.p;
fail:
  sb_free(&b);
  return NULL;
}

static jval *parse_value(jparser *j);

static int push(jval *v, jval *item, char *key, size_t *cap) {
  if (v->len == *cap) {
    size_t nc = *cap ? *cap * 2 : 4;
    jval **ni = realloc(v->items, nc * sizeof *ni);
    if (!ni) return 0;
    v->items = ni;
    if (v->t == J_OBJ) {
      char **nk = realloc(v->keys, nc * sizeof *nk);
      if (!nk) return 0;
      v->keys = nk;
    }
    *cap = nc;
  }
  v->items[v->len] = item;
  if (v->t == J_OBJ) v->keys[v->len] = key;
  v->len++;
  return 1;
}

static jval *parse_container(jparser *j, jtype t) {
  char close = t == J_OBJ ? '}' : ']';
  if (++j->depth > JSON_MAX_DEPTH) {
    jerr(j, "nesting too deep");
    return NULL;
  }
  jval *v = jnew(t);
  size_t cap = 0;
  if (!v) return NULL;
  j->p++;
  skip_ws(j);
  if (*j->p == close) {
    j->p++;
    j->depth--;
    return v;
  }
  for (;;) {
    char *key = NULL;
    skip_ws(j);
    if (t == J_OBJ) {
      size_t kl;
      if (*j->p != '"') {
        jerr(j, "expected a string key");
        goto fail;
      }
      key = parse_string(j, &kl);
      if (!key) goto fail;
      skip_ws(j);
      if (*j->p != ':') {
        free(key);
        jerr(j, "expected ':'");
        goto fail;
      }
      j->p++;
    }
    jval *item = parse_value(j);
    if (!item) {
      free(key);
      goto fail;
    }
    if (!push(v, item, key, &cap)) {
      free(key);
      json_free(item);
      goto fail;
    }
    skip_ws(j);
    if (*j->p == ',') {
      j->p++;
      continue;
    }
    if (*j->p == close) {
      j->p++;
      break;
    }
    jerr(j, t == J_OBJ ? "expected ',' or '}'" : "expected ',' or ']'");
    goto fail;
  }
  j->depth--;
  return v;
fail:
  json_free(v);
  return NULL;
}

static jval *parse_number(jparser *j) {
  const char *s = j->p;
  if (*j->p == '-') j->p++;
  if (*j->p == '0') {
    j->p++;
  } else if (*j->p >= '1' && *j->p <= '9') {
    while (isdigit((unsigned char)*j->p)) j->p++;
  } else {
    jerr(j, "bad number");
    return NULL;
  }
  if (*j->p == '.') {
    j->p++;
    if (!isdigit((unsigned char)*j->p)) {
      jerr(j, "bad number");
      return NULL;
    }
    while (isdigit((unsigned char)*j->p)) j->p++;
  }
  if (*j->p == 'e' || *j->p == 'E') {
    j->p++;
    if (*j->p == '+' || *j->p == '-') j->p++;
    if (!isdigit((unsigned char)*j->p)) {
      jerr(j, "bad number");
      return NULL;
    }
    while (isdigit((unsigned char)*j->p)) j->p++;
  }
  size_t n = (size_t)(j->p - s);
  char tmp[64];
  if (n >= sizeof tmp) {
    jerr(j, "number too long");
    return NULL;
  }
  memcpy(tmp, s, n);
  tmp[n] = 0;
  jval *v = jnew(J_NUM);
  if (v) v->n = strtod(tmp, NULL);
  return v;
}

static jval *parse_literal(jparser *j, const char *word, jtype t, int b) {
  size_t n = strlen(word);
  if (strncmp(j->p, word, n) != 0) {
    jerr(j, "unexpected token");
    return NULL;
  }
  j->p += n;
  jval *v = jnew(t);
  if (v) v->b = b;
  return v;
}

static jval *parse_value(jparser *j) {
  skip_ws(j);
  switch (*j->p) {
    case '{': return parse_container(j, J_OBJ);
    case '[': return parse_container(j, J_ARR);
    case '"': {
      size_t len;
      char *s = parse_string(j, &len);
      if (!s) return NULL;
      jval *v = jnew(J_STR);
      if (!v) {
        free(s);
        return NULL;
      }
      v->s = s;
      v->slen = len;
      return v;
    }
    case 't': return parse_literal(j, "true", J_BOOL, 1);
    case 'f': return parse_literal(j, "false", J_BOOL, 0);
    case 'n': return parse_literal(j, "null", J_NULL, 0);
    case 0: jerr(j, "unexpected end of document"); return NULL;
    default:
      if (*j->p == '-' || isdigit((unsigned char)*j->p)) return parse_number(j);
      jerr(j, "unexpected character");
      return NULL;
  }
}

jval *json_parse(const char *text, char *err, size_t errlen) {
  if (err && errlen) err[0] = 0;
  if (!text) text = "";
  jparser j = {text, text, err, errlen, 0};
  jval *v = parse_value(&j);
  if (!v) {
    if (err && errlen && !err[0]) snprintf(err, errlen, "out of memory");
    return NULL;
  }
  skip_ws(&j);
  if (*j.p) {
    jerr(&j, "trailing characters after the document");
    json_free(v);
    return NULL;
  }
  return v;
}

const jval *json_get(const jval *obj, const char *key) {
  if (!obj || obj->t != J_OBJ) return NULL;
  for (size_t i = obj->len; i-- > 0;)
    if (strcmp(obj->keys[i], key) == 0) return obj->items[i];
  for (size_t i = obj->len; i-- > 0;)
    if (strcasecmp(obj->keys[i], key) == 0) return obj->items[i];
  return NULL;
}

const char *json_str(const jval *v) { return v && v->t == J_STR ? v->s : NULL; }

int json_truthy(const jval *v) { return v && v->t == J_BOOL && v->b; }

int json_int(const jval *v, long long *out) {
  if (!v || v->t != J_NUM || !isfinite(v->n) || v->n != floor(v->n) || fabs(v->n) > 9.0e15) return 0;
  *out = (long long)v->n;
  return 1;
}

/* ---- string builder ---- */

void sb_putn(sbuf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->n + n + 1 > b->cap) {
    size_t nc = b->cap ? b->cap : 64;
    while (nc < b->n + n + 1) nc *= 2;
    char *np = realloc(b->p, nc);
    if (!np) {
      b->oom = 1;
      return;
    }
    b->p = np;
    b->cap = nc;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = 0;
}

void sb_puts(sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }

void sb_printf(sbuf *b, const char *fmt, ...) {
  char tmp[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof tmp) {
    sb_putn(b, tmp, (size_t)n);
    return;
  }
  char *big = malloc((size_t)n + 1);
  if (!big) {
    b->oom = 1;
    return;
  }
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  sb_putn(b, big, (size_t)n);
  free(big);
}

void sb_jstr(sbuf *b, const char *s) {
  if (!s) {
    sb_puts(b, "null");
    return;
  }
  sb_putn(b, "\"", 1);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    switch (*p) {
      case '"': sb_puts(b, "\\\""); break;
      case '\\': sb_puts(b, "\\\\"); break;
      case '\n': sb_puts(b, "\\n"); break;
      case '\r': sb_puts(b, "\\r"); break;
      case '\t': sb_puts(b, "\\t"); break;
      default:
        if (*p < 0x20) sb_printf(b, "\\u%04x", *p);
        else sb_putn(b, (const char *)p, 1);
    }
  }
  sb_putn(b, "\"", 1);
}

const char *sb_cstr(sbuf *b) { return b->p && !b->oom ? b->p : ""; }

void sb_free(sbuf *b) {
  free(b->p);
  b->p = NULL;
  b->n = b->cap = 0;
  b->oom = 0;
}
