/*
 * image-resize: resize, thumbnail and convert an image (JPEG, PNG, GIF first frame, BMP) to PNG
 * or JPEG, with its metadata gone (EXIF, GPS, XMP, comments: the output is encoded afresh from
 * the pixels; the EXIF orientation is applied to the pixels first, so the picture stays upright).
 * Decoding, resampling and encoding are stb_image, stb_image_resize and stb_image_write.
 *
 * Input: the image bytes, optionally after an options line (agents/lib/c/agent.h):
 *   {"maxSide":256}            fit within a square (the default, never enlarging, when no size is given)
 *   {"width":640,"height":480} fit within the box (either one alone keeps the aspect ratio; may enlarge)
 *   {"format":"jpeg"|"png"}    output format (default: JPEG stays JPEG, anything else becomes PNG)
 *   {"quality":85}             JPEG quality 1..100
 * Output: the encoded image bytes.
 */
#include "../lib/c/agent.h"

#include <math.h>
#include <stdint.h>

/* Declared sizes are checked before anything is decoded: 24 MP of RGBA is 96 MiB, under the
 * runtime's 128 MiB cap with room for the decoder's own buffers. */
#define MAX_PIXELS 24000000.0
#define MAX_OUTPUT_SIDE 8192

#define STBI_NO_STDIO
#define STBI_NO_HDR
#define STBI_NO_LINEAR
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_GIF
#define STBI_ONLY_BMP
#define STBI_MAX_DIMENSIONS 65535
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>

#define STBIW_NO_STDIO
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

#define STB_IMAGE_RESIZE_IMPLEMENTATION
#include <stb/stb_image_resize.h>

static void write_out(void *ctx, void *data, int size) {
  (void)ctx;
  zs_write(data, (size_t)size);
}

static int is_jpeg(const unsigned char *d, size_t n) { return n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF; }
static int is_png(const unsigned char *d, size_t n) { return n >= 8 && memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0; }

static unsigned rd16(const unsigned char *p, int le) { return le ? (unsigned)(p[0] | p[1] << 8) : (unsigned)(p[0] << 8 | p[1]); }
static uint32_t rd32(const unsigned char *p, int le) {
  return le ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
            : (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* The EXIF orientation (1..8) of a JPEG, 1 when it has none. Every offset is bounds-checked. */
static int jpeg_orientation(const unsigned char *d, size_t n) {
  size_t i = 2;
  while (i + 4 <= n && d[i] == 0xFF) {
    unsigned marker = d[i + 1];
    if (marker == 0xDA || marker == 0xD9) break; /* start of scan: no more metadata */
    size_t seg = rd16(d + i + 2, 0);
    if (seg < 2 || i + 2 + seg > n) break;
    const unsigned char *s = d + i + 4;
    size_t slen = seg - 2;
    if (marker == 0xE1 && slen >= 14 && memcmp(s, "Exif\0\0", 6) == 0) {
      const unsigned char *t = s + 6;
      size_t tlen = slen - 6;
      int le = t[0] == 'I';
      if ((t[0] != 'I' && t[0] != 'M') || t[1] != t[0]) return 1;
      uint32_t ifd = rd32(t + 4, le);
      if (ifd > tlen - 2) return 1;
      unsigned count = rd16(t + ifd, le);
      for (unsigned k = 0; k < count; k++) {
        size_t e = ifd + 2 + (size_t)k * 12;
        if (e + 12 > tlen) return 1;
        if (rd16(t + e, le) == 0x0112) {
          unsigned o = rd16(t + e + 8, le);
          return o >= 1 && o <= 8 ? (int)o : 1;
        }
      }
      return 1;
    }
    i += 2 + seg;
  }
  return 1;
}

/* Applies an EXIF orientation to w×h pixels of `c` channels; returns the new buffer (or `px`). */
static unsigned char *orient(unsigned char *px, int *w, int *h, int c, int o) {
  if (o <= 1) return px;
  int sw = *w, sh = *h, swap = o >= 5;
  int dw = swap ? sh : sw, dh = swap ? sw : sh;
  unsigned char *out = malloc((size_t)dw * dh * c);
  if (out == NULL) zs_fail("out of memory turning a %d×%d image upright", sw, sh);
  for (int y = 0; y < sh; y++) {
    for (int x = 0; x < sw; x++) {
      int dx, dy;
      switch (o) {
        case 2: dx = sw - 1 - x; dy = y; break;
        case 3: dx = sw - 1 - x; dy = sh - 1 - y; break;
        case 4: dx = x; dy = sh - 1 - y; break;
        case 5: dx = y; dy = x; break;
        case 6: dx = sh - 1 - y; dy = x; break;
        case 7: dx = sh - 1 - y; dy = sw - 1 - x; break;
        default: dx = y; dy = sw - 1 - x; break; /* 8 */
      }
      memcpy(out + ((size_t)dy * dw + dx) * c, px + ((size_t)y * sw + x) * c, (size_t)c);
    }
  }
  stbi_image_free(px);
  *w = dw;
  *h = dh;
  return out;
}

/* The size an image's header declares (PNG IHDR, JPEG SOFn, GIF screen, BMP header), read before
 * any decoder runs so a huge declared size is refused with its numbers; 0 when not found. */
static int declared_size(const unsigned char *d, size_t n, double *w, double *h) {
  if (is_png(d, n) && n >= 24) {
    *w = rd32(d + 16, 0);
    *h = rd32(d + 20, 0);
    return 1;
  }
  if (is_jpeg(d, n)) {
    for (size_t i = 2; i + 9 < n && d[i] == 0xFF;) {
      unsigned m = d[i + 1];
      if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
        *h = rd16(d + i + 5, 0);
        *w = rd16(d + i + 7, 0);
        return 1;
      }
      if (m == 0xDA) break;
      i += 2 + rd16(d + i + 2, 0);
    }
    return 0;
  }
  if (n >= 10 && memcmp(d, "GIF8", 4) == 0) {
    *w = rd16(d + 6, 1);
    *h = rd16(d + 8, 1);
    return 1;
  }
  if (n >= 26 && d[0] == 'B' && d[1] == 'M') {
    *w = (int32_t)rd32(d + 18, 1);
    *h = (int32_t)rd32(d + 22, 1);
    if (*h < 0) *h = -*h;
    return 1;
  }
  return 0;
}

/* A JPEG must end with its end-of-image marker: stb_image would fill a cut-off scan with grey. */
static int jpeg_complete(const unsigned char *d, size_t n) {
  while (n > 2 && (d[n - 1] == 0 || d[n - 1] == '\n' || d[n - 1] == '\r')) n--;
  return n >= 4 && d[n - 2] == 0xFF && d[n - 1] == 0xD9;
}

int main(void) {
  size_t total;
  unsigned char *buf = zs_read_stdin(&total);
  zs_input in;
  zs_split_input(buf, total, &in);
  if (in.len == 0) zs_fail("no image: send the bytes of a JPEG, PNG, GIF or BMP file");
  if (in.len > 0x7fffffff) zs_fail("the image is too large");

  double maxSide = zs_option_number(in.options, "maxSide", 0);
  double width = zs_option_number(in.options, "width", 0);
  double height = zs_option_number(in.options, "height", 0);
  double quality = zs_option_number(in.options, "quality", 85);
  char format[16] = "";
  zs_option_string(in.options, "format", format, sizeof format);
  if (maxSide < 0 || width < 0 || height < 0 || maxSide > MAX_OUTPUT_SIDE || width > MAX_OUTPUT_SIDE || height > MAX_OUTPUT_SIDE)
    zs_fail("sizes must be between 1 and %d pixels", MAX_OUTPUT_SIDE);
  if (quality < 1 || quality > 100) zs_fail("quality must be between 1 and 100");
  int jpeg_in = is_jpeg(in.data, in.len);
  int jpeg_out;
  if (format[0] == 0 || strcmp(format, "same") == 0) jpeg_out = jpeg_in;
  else if (strcmp(format, "jpeg") == 0 || strcmp(format, "jpg") == 0) jpeg_out = 1;
  else if (strcmp(format, "png") == 0) jpeg_out = 0;
  else zs_fail("unknown format \"%s\": use \"png\" or \"jpeg\"", format);

  double dw, dh;
  if (declared_size(in.data, in.len, &dw, &dh) && dw * dh > MAX_PIXELS)
    zs_fail("the image declares %.0f×%.0f pixels (%.0f MP); the limit is %.0f MP", dw, dh, dw * dh / 1e6, MAX_PIXELS / 1e6);
  int w, h, comp;
  if (!stbi_info_from_memory(in.data, (int)in.len, &w, &h, &comp))
    zs_fail("not an image this agent reads (JPEG, PNG, GIF, BMP): %s", stbi_failure_reason());
  if ((double)w * h > MAX_PIXELS)
    zs_fail("the image declares %d×%d pixels (%.0f MP); the limit is %.0f MP", w, h, (double)w * h / 1e6, MAX_PIXELS / 1e6);
  if (jpeg_in && !jpeg_complete(in.data, in.len)) zs_fail("the JPEG is truncated: it has no end-of-image marker");

  int orientation = jpeg_in ? jpeg_orientation(in.data, in.len) : 1;
  unsigned char *px = stbi_load_from_memory(in.data, (int)in.len, &w, &h, &comp, 0);
  if (px == NULL) zs_fail("the image could not be decoded: %s", stbi_failure_reason());
  free(buf);
  px = orient(px, &w, &h, comp, orientation);

  double scale;
  if (width > 0 || height > 0) {
    double sx = width > 0 ? width / w : INFINITY, sy = height > 0 ? height / h : INFINITY;
    scale = sx < sy ? sx : sy;
  } else {
    double side = maxSide > 0 ? maxSide : 256;
    double big = w > h ? w : h;
    scale = side / big < 1 ? side / big : 1;
  }
  int ow = (int)lround(w * scale), oh = (int)lround(h * scale);
  if (ow < 1) ow = 1;
  if (oh < 1) oh = 1;
  if (ow > MAX_OUTPUT_SIDE || oh > MAX_OUTPUT_SIDE) zs_fail("the result would be %d×%d pixels; the limit is %d on a side", ow, oh, MAX_OUTPUT_SIDE);

  unsigned char *out = px;
  if (ow != w || oh != h) {
    out = malloc((size_t)ow * oh * comp);
    if (out == NULL) zs_fail("out of memory for a %d×%d result", ow, oh);
    int alpha = comp == 4 ? 3 : comp == 2 ? 1 : STBIR_ALPHA_CHANNEL_NONE;
    if (!stbir_resize_uint8_srgb(px, w, h, 0, out, ow, oh, 0, comp, alpha, 0)) zs_fail("resizing failed");
  }
  int ok = jpeg_out ? stbi_write_jpg_to_func(write_out, NULL, ow, oh, comp, out, (int)quality)
                    : stbi_write_png_to_func(write_out, NULL, ow, oh, comp, out, ow * comp);
  if (!ok) zs_fail("encoding the result failed");
  fflush(stdout);
  return 0;
}
