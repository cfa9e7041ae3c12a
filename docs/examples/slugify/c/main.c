/* slugify in C (ABI wasi-preview1): the text arrives on stdin, the answer
   {"slug": …, "length": …} goes to stdout. Plain C and libc: wasi-libc does the I/O. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
  size_t cap = 256, len = 0;
  char *slug = malloc(cap);
  int c, dash = 0;
  if (slug == NULL) return 1;
  while ((c = getchar()) != EOF) {
    /* Bytes of non-ASCII characters (UTF-8, 128 and up) are not letters here: they make a dash. */
    if (c < 128 && isalnum(c)) {
      if (len + 2 > cap) {
        char *bigger = realloc(slug, cap *= 2);
        if (bigger == NULL) return 1;
        slug = bigger;
      }
      if (dash && len > 0) slug[len++] = '-';
      dash = 0;
      slug[len++] = (char)tolower(c);
    } else {
      dash = 1;
    }
  }
  /* The slug holds only a-z, 0-9 and '-': nothing in it needs escaping in JSON. */
  printf("{\"slug\":\"%.*s\",\"length\":%zu}", (int)len, slug, len);
  free(slug);
  return 0;
}
