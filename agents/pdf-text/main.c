/*
 * pdf-text: the text of a PDF, from the text operators (Tj, TJ, ', ") of its content streams,
 * uncompressed or Flate-compressed (inflated with stb_image's zlib), in file order, a line break
 * where the text moves to a new line. Simple fonts are read as Latin-1 (WinAnsi's letters), a
 * string with a UTF-16 byte-order mark as UTF-16; glyph ids of composite fonts are not mapped.
 *
 * Input: the PDF bytes. Output: {"text": "...", "pages": N, "streams": N, "characters": N}.
 * Every stream is inflated into a fixed buffer: one that would inflate past 8 MiB (a compression
 * bomb) or 64 MiB in all is refused with a sentence, in bounded memory.
 */
#include "../lib/c/agent.h"

#include <stdint.h>

#define STBI_NO_STDIO
#define STBI_ONLY_PNG /* only its zlib inflate is used */
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>

#define MAX_STREAM (8u * 1024u * 1024u)
#define MAX_INFLATED (64u * 1024u * 1024u)
#define MAX_TEXT (4u * 1024u * 1024u)

static char *text;
static size_t text_len;

static void emit_byte(unsigned char c) {
  if (text_len + 4 >= MAX_TEXT) return;
  text[text_len++] = (char)c;
}

/* A code point as UTF-8. */
static void emit_cp(uint32_t cp) {
  if (cp < 0x80) emit_byte((unsigned char)cp);
  else if (cp < 0x800) {
    emit_byte(0xC0 | (cp >> 6));
    emit_byte(0x80 | (cp & 63));
  } else if (cp < 0x10000) {
    emit_byte(0xE0 | (cp >> 12));
    emit_byte(0x80 | ((cp >> 6) & 63));
    emit_byte(0x80 | (cp & 63));
  } else {
    emit_byte(0xF0 | (cp >> 18));
    emit_byte(0x80 | ((cp >> 12) & 63));
    emit_byte(0x80 | ((cp >> 6) & 63));
    emit_byte(0x80 | (cp & 63));
  }
}

static void newline(void) {
  while (text_len > 0 && text[text_len - 1] == ' ') text_len--;
  if (text_len > 0 && text[text_len - 1] != '\n') emit_byte('\n');
}
static void space(void) {
  if (text_len > 0 && text[text_len - 1] != ' ' && text[text_len - 1] != '\n') emit_byte(' ');
}

/* A decoded PDF string's bytes as text. */
static void emit_string(const unsigned char *s, size_t n) {
  if (n >= 2 && s[0] == 0xFE && s[1] == 0xFF) {
    for (size_t i = 2; i + 1 < n; i += 2) {
      uint32_t u = (uint32_t)s[i] << 8 | s[i + 1];
      if (u >= 0xD800 && u < 0xDC00 && i + 3 < n) {
        uint32_t lo = (uint32_t)s[i + 2] << 8 | s[i + 3];
        if (lo >= 0xDC00 && lo < 0xE000) {
          emit_cp(0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00));
          i += 2;
          continue;
        }
      }
      if (u >= 0x20 && !(u >= 0xD800 && u < 0xE000)) emit_cp(u);
    }
    return;
  }
  for (size_t i = 0; i < n; i++) {
    unsigned char c = s[i];
    if (c == '\t' || c >= 0x20) emit_cp(c == '\t' ? ' ' : c); /* Latin-1 */
  }
}

/* The operands seen since the last operator: the strings (decoded) and the last two numbers. */
static unsigned char *strbuf;
static size_t strbuf_len;
#define STRBUF (64u * 1024u)

static int is_ws(unsigned char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f' || c == 0; }
static int is_delim(unsigned char c) { return c == '(' || c == ')' || c == '<' || c == '>' || c == '[' || c == ']' || c == '{' || c == '}' || c == '/' || c == '%'; }
static int hexval(unsigned char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1; }

/* Reads a literal string at s[i] == '(' into strbuf; returns the index after it. */
static size_t read_literal(const unsigned char *s, size_t n, size_t i, size_t *start) {
  *start = strbuf_len;
  int depth = 1;
  for (i++; i < n && depth > 0; i++) {
    unsigned char c = s[i];
    if (c == '\\' && i + 1 < n) {
      unsigned char e = s[++i];
      int v = -1;
      switch (e) {
        case 'n': v = '\n'; break;
        case 'r': v = '\r'; break;
        case 't': v = '\t'; break;
        case 'b': v = '\b'; break;
        case 'f': v = '\f'; break;
        case '\r':
          if (i + 1 < n && s[i + 1] == '\n') i++;
          continue;
        case '\n': continue;
        default:
          if (e >= '0' && e <= '7') {
            v = e - '0';
            for (int k = 0; k < 2 && i + 1 < n && s[i + 1] >= '0' && s[i + 1] <= '7'; k++) v = v * 8 + (s[++i] - '0');
            v &= 255;
          } else v = e;
      }
      if (strbuf_len < STRBUF) strbuf[strbuf_len++] = (unsigned char)v;
      continue;
    }
    if (c == '(') depth++;
    if (c == ')' && --depth == 0) break;
    if (strbuf_len < STRBUF) strbuf[strbuf_len++] = c;
  }
  return i + 1;
}

static size_t read_hex(const unsigned char *s, size_t n, size_t i, size_t *start) {
  *start = strbuf_len;
  int hi = -1;
  for (i++; i < n && s[i] != '>'; i++) {
    int v = hexval(s[i]);
    if (v < 0) continue;
    if (hi < 0) hi = v;
    else {
      if (strbuf_len < STRBUF) strbuf[strbuf_len++] = (unsigned char)(hi << 4 | v);
      hi = -1;
    }
  }
  if (hi >= 0 && strbuf_len < STRBUF) strbuf[strbuf_len++] = (unsigned char)(hi << 4);
  return i + 1;
}

/* Runs the text operators of one content stream. */
static void content(const unsigned char *s, size_t n) {
  size_t i = 0;
  int in_text = 0, in_array = 0;
  double nums[6] = {0};
  int nnums = 0;
  /* Strings of the current operands: their spans in strbuf, and TJ's spacing in between. */
  strbuf_len = 0;
  size_t spans[256][2];
  int gaps[256];
  int nspans = 0;
  while (i < n) {
    unsigned char c = s[i];
    if (is_ws(c)) {
      i++;
      continue;
    }
    if (c == '%') {
      while (i < n && s[i] != '\n' && s[i] != '\r') i++;
      continue;
    }
    if (c == '(' || (c == '<' && !(i + 1 < n && s[i + 1] == '<'))) {
      size_t start;
      i = c == '(' ? read_literal(s, n, i, &start) : read_hex(s, n, i, &start);
      if (nspans < 256) {
        spans[nspans][0] = start;
        spans[nspans][1] = strbuf_len;
        gaps[nspans] = 0;
        nspans++;
      }
      continue;
    }
    if (c == '[') {
      in_array = 1;
      i++;
      continue;
    }
    if (c == ']') {
      in_array = 0;
      i++;
      continue;
    }
    if (c == '<' || c == '>' || c == '{' || c == '}' || c == ')') {
      i++;
      continue;
    }
    if (c == '/') { /* a name */
      i++;
      while (i < n && !is_ws(s[i]) && !is_delim(s[i])) i++;
      continue;
    }
    if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.') {
      char num[32];
      size_t k = 0;
      while (i < n && k < sizeof num - 1 && ((s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '+' || s[i] == '.')) num[k++] = (char)s[i++];
      num[k] = 0;
      double v = strtod(num, NULL);
      if (in_array && nspans > 0 && v < -200) gaps[nspans - 1] = 1; /* TJ: a wide move right is a space */
      if (nnums == 6) {
        memmove(nums, nums + 1, 5 * sizeof nums[0]);
        nnums = 5;
      }
      nums[nnums++] = v;
      continue;
    }
    /* An operator. */
    char op[4];
    size_t k = 0;
    while (i < n && !is_ws(s[i]) && !is_delim(s[i])) {
      if (k < 3) op[k] = (char)s[i];
      k++;
      i++;
    }
    if (k == 0) {
      i++;
      continue;
    }
    op[k < 3 ? k : 3] = 0;
    if (k <= 2) {
      if (strcmp(op, "BT") == 0) in_text = 1;
      else if (strcmp(op, "ET") == 0) {
        in_text = 0;
        newline();
      } else if (in_text) {
        if (strcmp(op, "Tj") == 0 || strcmp(op, "TJ") == 0 || strcmp(op, "'") == 0 || strcmp(op, "\"") == 0) {
          if (op[0] == '\'' || op[0] == '"') newline();
          for (int j = 0; j < nspans; j++) {
            emit_string(strbuf + spans[j][0], spans[j][1] - spans[j][0]);
            if (gaps[j]) space();
          }
        } else if (strcmp(op, "T*") == 0) newline();
        else if (strcmp(op, "Td") == 0 || strcmp(op, "TD") == 0) {
          if (nnums >= 1 && nums[nnums - 1] != 0) newline();
          else space();
        } else if (strcmp(op, "Tm") == 0) newline();
      }
    }
    nspans = 0;
    nnums = 0;
    strbuf_len = 0;
  }
}

static const unsigned char *find(const unsigned char *h, size_t n, const char *needle, size_t from) {
  size_t m = strlen(needle);
  for (size_t i = from; i + m <= n; i++) {
    if (h[i] == (unsigned char)needle[0] && memcmp(h + i, needle, m) == 0) return h + i;
  }
  return NULL;
}

/* Whether the dictionary text [d, e) contains `key`. */
static int dict_has(const unsigned char *d, const unsigned char *e, const char *key) { return find(d, (size_t)(e - d), key, 0) != NULL; }

int main(void) {
  size_t n;
  unsigned char *pdf = zs_read_stdin(&n);
  if (n < 8 || find(pdf, n < 1024 ? n : 1024, "%PDF-", 0) == NULL) zs_fail("not a PDF: it does not start with %%PDF-");
  text = malloc(MAX_TEXT);
  strbuf = malloc(STRBUF);
  unsigned char *inflated = malloc(MAX_STREAM);
  if (text == NULL || strbuf == NULL || inflated == NULL) zs_fail("out of memory");

  size_t pages = 0, streams = 0, total_inflated = 0;
  for (const unsigned char *p = pdf; (p = find(pdf, n, "/Type", (size_t)(p - pdf))) != NULL; p += 5) {
    const unsigned char *q = p + 5;
    while (q < pdf + n && is_ws(*q)) q++;
    if (q + 5 <= pdf + n && memcmp(q, "/Page", 5) == 0 && (q + 5 == pdf + n || (*(q + 5) != 's' && !((*(q + 5) >= 'A' && *(q + 5) <= 'Z') || (*(q + 5) >= 'a' && *(q + 5) <= 'z'))))) pages++;
  }

  for (size_t at = 0;;) {
    const unsigned char *kw = find(pdf, n, "stream", at);
    if (kw == NULL) break;
    size_t pos = (size_t)(kw - pdf);
    at = pos + 6;
    /* "endstream" contains "stream": skip it; a stream keyword is followed by CRLF or LF. */
    if (pos >= 3 && memcmp(kw - 3, "end", 3) == 0) continue;
    size_t data = pos + 6;
    if (data < n && pdf[data] == '\r') data++;
    if (data >= n || pdf[data] != '\n') continue;
    data++;
    /* The stream's dictionary: back to the "obj" before it. */
    const unsigned char *dict_end = kw;
    const unsigned char *dict = kw;
    size_t back = 0;
    while (dict > pdf && back < 4096 && !(dict - pdf >= 3 && memcmp(dict - 3, "obj", 3) == 0)) {
      dict--;
      back++;
    }
    const unsigned char *endkw = find(pdf, n, "endstream", data);
    if (endkw == NULL) zs_fail("the PDF is truncated: a stream has no endstream");
    size_t len = (size_t)(endkw - pdf) - data;
    at = (size_t)(endkw - pdf) + 9;
    if (dict_has(dict, dict_end, "/Image") || dict_has(dict, dict_end, "/Length1") || dict_has(dict, dict_end, "/FontFile") || dict_has(dict, dict_end, "/XRef"))
      continue;
    int flate = dict_has(dict, dict_end, "/FlateDecode") || dict_has(dict, dict_end, "/Fl ") || dict_has(dict, dict_end, "/Fl]");
    int other_filter = !flate && dict_has(dict, dict_end, "/Filter");
    if (other_filter) continue; /* DCT, LZW, ASCII85…: not text this agent reads */
    streams++;
    if (!flate) {
      content(pdf + data, len);
      continue;
    }
    size_t room = MAX_INFLATED - total_inflated;
    int cap = (int)(room < MAX_STREAM ? room : MAX_STREAM);
    if (len > 0x7fffffff) zs_fail("a stream is too large");
    int got = stbi_zlib_decode_buffer((char *)inflated, cap, (const char *)pdf + data, (int)len);
    if (got < 0) {
      const char *why = stbi_failure_reason();
      if (why != NULL && strcmp(why, "output buffer limit") == 0) {
        if (cap < (int)MAX_STREAM) zs_fail("the PDF's streams inflate past %u MiB in all: refused", MAX_INFLATED >> 20);
        zs_fail("a stream of %zu bytes inflates past %u MiB (a compression bomb?): refused", len, MAX_STREAM >> 20);
      }
      zs_fail("a compressed stream is corrupt or cut short (%s)", why != NULL ? why : "inflate failed");
    }
    total_inflated += (size_t)got;
    content(inflated, (size_t)got);
  }
  while (text_len > 0 && (text[text_len - 1] == '\n' || text[text_len - 1] == ' ')) text_len--;

  size_t characters = 0;
  for (size_t i = 0; i < text_len; i++) characters += ((unsigned char)text[i] & 0xC0) != 0x80;
  fputs("{\"text\":", stdout);
  zs_write_json_string(text, text_len);
  fprintf(stdout, ",\"pages\":%zu,\"streams\":%zu,\"characters\":%zu}\n", pages, streams, characters);
  fflush(stdout);
  return 0;
}
