/* UTF-16LE <-> UTF-8 conversion and the tracked CoTaskMem allocator every out string comes from. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- CoTaskMemAlloc / CoTaskMemFree with live-block tracking ---- */

typedef struct memhdr {
  struct memhdr *prev, *next;
  size_t size;
  size_t pad; /* keeps the payload 16-byte aligned */
} memhdr;

static pthread_mutex_t mem_mu = PTHREAD_MUTEX_INITIALIZER;
static memhdr *mem_list;
static int32_t mem_live;
static int32_t mem_bad;

API void *CoTaskMemAlloc(size_t cb) {
  memhdr *h = malloc(sizeof *h + (cb ? cb : 1));
  if (!h) return NULL;
  h->size = cb;
  h->prev = NULL;
  pthread_mutex_lock(&mem_mu);
  h->next = mem_list;
  if (mem_list) mem_list->prev = h;
  mem_list = h;
  mem_live++;
  pthread_mutex_unlock(&mem_mu);
  return h + 1;
}

API void CoTaskMemFree(void *pv) {
  if (!pv) return;
  memhdr *h = (memhdr *)pv - 1;
  pthread_mutex_lock(&mem_mu);
  /* Compare pointers only: a double-freed block must not be dereferenced. */
  memhdr *it = mem_list;
  while (it && it != h) it = it->next;
  if (!it) {
    mem_bad++;
    pthread_mutex_unlock(&mem_mu);
    return;
  }
  if (h->prev) h->prev->next = h->next;
  else mem_list = h->next;
  if (h->next) h->next->prev = h->prev;
  mem_live--;
  pthread_mutex_unlock(&mem_mu);
  free(h);
}

API void *LocalFree(void *hMem) {
  CoTaskMemFree(hMem);
  return NULL;
}

API int32_t FakeGetLiveAllocations(void) {
  pthread_mutex_lock(&mem_mu);
  int32_t n = mem_live;
  pthread_mutex_unlock(&mem_mu);
  return n;
}

API int32_t FakeGetInvalidFrees(void) {
  pthread_mutex_lock(&mem_mu);
  int32_t n = mem_bad;
  pthread_mutex_unlock(&mem_mu);
  return n;
}

/* ---- conversions ---- */

static size_t u16len(const uint16_t *s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}

char *u16_to_utf8(const uint16_t *s) {
  if (!s) return NULL;
  size_t n = u16len(s);
  char *out = malloc(n * 3 + 1);
  if (!out) return NULL;
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    uint32_t c = s[i];
    if (c >= 0xD800 && c <= 0xDBFF && i + 1 < n && s[i + 1] >= 0xDC00 && s[i + 1] <= 0xDFFF) {
      c = 0x10000 + ((c - 0xD800) << 10) + (s[i + 1] - 0xDC00);
      i++;
    } else if (c >= 0xD800 && c <= 0xDFFF) {
      c = 0xFFFD;
    }
    if (c < 0x80) {
      out[o++] = (char)c;
    } else if (c < 0x800) {
      out[o++] = (char)(0xC0 | (c >> 6));
      out[o++] = (char)(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
      out[o++] = (char)(0xE0 | (c >> 12));
      out[o++] = (char)(0x80 | ((c >> 6) & 0x3F));
      out[o++] = (char)(0x80 | (c & 0x3F));
    } else {
      out[o++] = (char)(0xF0 | (c >> 18));
      out[o++] = (char)(0x80 | ((c >> 12) & 0x3F));
      out[o++] = (char)(0x80 | ((c >> 6) & 0x3F));
      out[o++] = (char)(0x80 | (c & 0x3F));
    }
  }
  out[o] = 0;
  return out;
}

/* Decodes UTF-8 leniently (invalid sequences → U+FFFD) into UTF-16 using alloc. */
static uint16_t *utf8_to_u16_with(const char *s, void *(*alloc)(size_t)) {
  if (!s) s = "";
  size_t n = strlen(s);
  uint16_t *out = alloc((n + 1) * sizeof(uint16_t));
  if (!out) return NULL;
  const unsigned char *p = (const unsigned char *)s, *end = p + n;
  size_t o = 0;
  while (p < end) {
    uint32_t c = *p;
    int extra = 0;
    uint32_t min = 0;
    if (c < 0x80) {
      extra = 0;
    } else if ((c & 0xE0) == 0xC0) {
      c &= 0x1F, extra = 1, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      c &= 0x0F, extra = 2, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      c &= 0x07, extra = 3, min = 0x10000;
    } else {
      out[o++] = 0xFFFD;
      p++;
      continue;
    }
    if ((size_t)(end - p) < (size_t)extra + 1) {
      out[o++] = 0xFFFD;
      p++;
      continue;
    }
    int ok = 1;
    for (int k = 1; k <= extra; k++) {
      if ((p[k] & 0xC0) != 0x80) {
        ok = 0;
        break;
      }
      c = (c << 6) | (p[k] & 0x3F);
    }
    if (!ok || c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
      out[o++] = 0xFFFD;
      p++;
      continue;
    }
    p += extra + 1;
    if (c >= 0x10000) {
      c -= 0x10000;
      out[o++] = (uint16_t)(0xD800 + (c >> 10));
      out[o++] = (uint16_t)(0xDC00 + (c & 0x3FF));
    } else {
      out[o++] = (uint16_t)c;
    }
  }
  out[o] = 0;
  return out;
}

uint16_t *utf8_to_u16_cotask(const char *s) { return utf8_to_u16_with(s, CoTaskMemAlloc); }
uint16_t *utf8_to_u16_malloc(const char *s) { return utf8_to_u16_with(s, malloc); }

static uint16_t *u16_dup_with(const uint16_t *s, void *(*alloc)(size_t)) {
  static const uint16_t empty[1] = {0};
  if (!s) s = empty;
  size_t n = u16len(s);
  uint16_t *out = alloc((n + 1) * sizeof(uint16_t));
  if (out) memcpy(out, s, (n + 1) * sizeof(uint16_t));
  return out;
}

uint16_t *u16_dup_cotask(const uint16_t *s) { return u16_dup_with(s, CoTaskMemAlloc); }
uint16_t *u16_dup_malloc(const uint16_t *s) { return u16_dup_with(s, malloc); }

int32_t out_str(uint16_t **out, const char *utf8) {
  if (!out) return S_OK;
  *out = utf8_to_u16_cotask(utf8);
  return *out ? S_OK : E_OUTOFMEMORY;
}
