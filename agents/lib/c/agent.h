/*
 * Shared I/O for the bundled C agents (wasi-preview1 commands built by agents/build.mjs with
 * clang --target=wasm32-wasi). An agent reads its whole input from stdin, writes its output to
 * stdout and, on bad input, one sentence to stderr and exit status 1 (the runtime reports it as
 * AgentExitError with that sentence): never a trap.
 *
 * Input of a media agent: the media bytes as they are, optionally preceded by one options line, a
 * flat JSON object ending in "\n" (e.g. {"maxSide":128,"format":"jpeg"}\n<JPEG bytes>). Media
 * never starts with '{' (PNG, JPEG, GIF, BMP, RIFF/WAVE and %PDF all have other magic), so a
 * leading '{' always means options.
 */
#ifndef ZS_AGENT_H
#define ZS_AGENT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Inputs reach an agent through the mesh's 16 MiB payload cap; refuse more without reading on. */
#define ZS_MAX_INPUT (16u * 1024u * 1024u)
/* The options line is small: a longer one is not an options line. */
#define ZS_MAX_OPTIONS 4096u

__attribute__((noreturn, format(printf, 1, 2))) static void zs_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  fflush(stderr);
  exit(1);
}

/* Reads all of stdin (at most ZS_MAX_INPUT bytes) into a malloc'd buffer. */
static unsigned char *zs_read_stdin(size_t *len) {
  size_t cap = 64 * 1024, n = 0;
  unsigned char *buf = malloc(cap);
  if (buf == NULL) zs_fail("out of memory reading the input");
  for (;;) {
    if (n == cap) {
      if (cap >= ZS_MAX_INPUT) zs_fail("the input is larger than %u MiB", ZS_MAX_INPUT >> 20);
      cap *= 2;
      unsigned char *next = realloc(buf, cap);
      if (next == NULL) zs_fail("out of memory reading the input (%zu bytes so far)", n);
      buf = next;
    }
    size_t got = fread(buf + n, 1, cap - n, stdin);
    if (got == 0) break;
    n += got;
  }
  *len = n;
  return buf;
}

/* The options line and the media after it. `options` is "" when there is none. */
typedef struct {
  char options[ZS_MAX_OPTIONS + 1];
  const unsigned char *data;
  size_t len;
} zs_input;

static void zs_split_input(const unsigned char *buf, size_t len, zs_input *in) {
  in->options[0] = 0;
  in->data = buf;
  in->len = len;
  if (len == 0 || buf[0] != '{') return;
  size_t i = 0;
  while (i < len && i < ZS_MAX_OPTIONS && buf[i] != '\n') i++;
  if (i >= len || buf[i] != '\n') zs_fail("the input starts with '{' but has no options line: expected one JSON object, a newline, then the media bytes");
  memcpy(in->options, buf, i);
  in->options[i] = 0;
  in->data = buf + i + 1;
  in->len = len - i - 1;
}

/* Finds "key": in a flat JSON object; returns a pointer just after the colon (spaces skipped) or NULL. */
static const char *zs_option(const char *json, const char *key) {
  size_t klen = strlen(key);
  for (const char *p = json; (p = strchr(p, '"')) != NULL;) {
    const char *end = strchr(p + 1, '"');
    if (end == NULL) return NULL;
    if ((size_t)(end - p - 1) == klen && strncmp(p + 1, key, klen) == 0) {
      const char *v = end + 1;
      while (*v == ' ' || *v == '\t') v++;
      if (*v != ':') {
        p = end + 1;
        continue;
      }
      v++;
      while (*v == ' ' || *v == '\t') v++;
      return v;
    }
    p = end + 1;
  }
  return NULL;
}

/* A number option, `def` when absent; a value that is not a number fails naming the option. */
static double zs_option_number(const char *json, const char *key, double def) {
  const char *v = zs_option(json, key);
  if (v == NULL || strncmp(v, "null", 4) == 0) return def;
  char *end;
  double d = strtod(v, &end);
  if (end == v) zs_fail("option \"%s\" must be a number", key);
  return d;
}

/* A string option copied into `out` (at most `cap - 1` characters); returns 0 when absent. */
static int zs_option_string(const char *json, const char *key, char *out, size_t cap) {
  const char *v = zs_option(json, key);
  if (v == NULL || strncmp(v, "null", 4) == 0) return 0;
  if (*v != '"') zs_fail("option \"%s\" must be a string", key);
  v++;
  size_t n = 0;
  while (*v && *v != '"' && n + 1 < cap) out[n++] = *v++;
  if (*v != '"') zs_fail("option \"%s\" is too long or unterminated", key);
  out[n] = 0;
  return 1;
}

/* Writes `len` bytes to stdout; a failed write (output cap) fails the agent. */
static void zs_write(const void *data, size_t len) {
  if (len > 0 && fwrite(data, 1, len, stdout) != len) zs_fail("could not write the output");
}

/* Writes `s` as a JSON string literal (quotes, escapes, control characters as \u00XX). */
static void zs_write_json_string(const char *s, size_t len) {
  fputc('"', stdout);
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      fputc('\\', stdout);
      fputc(c, stdout);
    } else if (c == '\n') {
      fputs("\\n", stdout);
    } else if (c == '\t') {
      fputs("\\t", stdout);
    } else if (c < 0x20) {
      fprintf(stdout, "\\u%04x", c);
    } else {
      fputc(c, stdout);
    }
  }
  fputc('"', stdout);
}

#endif
