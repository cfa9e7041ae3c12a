/*
 * audio-edit: trim, resample and downmix a WAV file (PCM 8/16/24/32-bit or 32-bit float, mono or
 * more channels, WAVE_FORMAT_EXTENSIBLE too) into a 16-bit PCM WAV.
 *
 * Input: the WAV bytes, optionally after an options line (agents/lib/c/agent.h):
 *   {"start":1.5,"end":4}      keep this span, in seconds (default: all of it)
 *   {"rate":16000}             resample to this rate, 8000..192000 Hz (windowed-sinc, anti-aliased)
 *   {"channels":1}             1 mixes down to mono; default: as the input (at most 2 are kept)
 * Output: the WAV bytes.
 */
#include "../lib/c/agent.h"

#include <math.h>
#include <stdint.h>

/* The runtime's output cap: a longer result is refused up front, with the numbers. */
#define MAX_OUTPUT_BYTES (10u * 1024u * 1024u)
/* Half the windowed-sinc filter's length, in input samples at the cut-off. */
#define TAPS 16
#define PI 3.14159265358979323846

typedef struct {
  unsigned format, channels, rate, bits, align;
  const unsigned char *data;
  size_t frames;
} wav;

static uint32_t le32(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static unsigned le16(const unsigned char *p) { return (unsigned)(p[0] | p[1] << 8); }

static void parse(const unsigned char *d, size_t n, wav *w) {
  if (n < 12 || memcmp(d, "RIFF", 4) != 0 || memcmp(d + 8, "WAVE", 4) != 0) zs_fail("not a WAV file (RIFF/WAVE): this agent reads WAV audio");
  int have_fmt = 0;
  for (size_t at = 12; at + 8 <= n;) {
    uint32_t len = le32(d + at + 4);
    const unsigned char *body = d + at + 8;
    size_t avail = n - at - 8;
    if (memcmp(d + at, "fmt ", 4) == 0) {
      if (len < 16 || avail < 16) zs_fail("the WAV's format chunk is cut short");
      w->format = le16(body);
      w->channels = le16(body + 2);
      w->rate = le32(body + 4);
      w->align = le16(body + 12);
      w->bits = le16(body + 14);
      if (w->format == 0xFFFE && len >= 26 && avail >= 26) w->format = le16(body + 24); /* the extensible sub-format */
      have_fmt = 1;
    } else if (memcmp(d + at, "data", 4) == 0) {
      if (!have_fmt) zs_fail("the WAV has its data before its format chunk");
      /* A streamed WAV may declare more data than it has (or 0xFFFFFFFF): keep what is there. */
      size_t size = len < avail ? len : avail;
      if (w->channels == 0 || w->channels > 16) zs_fail("the WAV declares %u channels (1 to 16 are read)", w->channels);
      if (w->rate < 1 || w->rate > 768000) zs_fail("the WAV declares a sample rate of %u Hz", w->rate);
      int pcm = w->format == 1 && (w->bits == 8 || w->bits == 16 || w->bits == 24 || w->bits == 32);
      int flt = w->format == 3 && w->bits == 32;
      if (!pcm && !flt) zs_fail("unsupported WAV encoding (format %u, %u bits): PCM 8/16/24/32-bit or 32-bit float are read", w->format, w->bits);
      if (w->align != w->channels * (w->bits / 8)) zs_fail("the WAV's block size (%u) does not match %u channels of %u bits", w->align, w->channels, w->bits);
      w->data = body;
      w->frames = size / w->align;
      return;
    }
    if (len > avail) break;
    at += 8 + (size_t)len + (len & 1);
  }
  zs_fail(have_fmt ? "the WAV has no data chunk" : "the WAV has no format chunk");
}

/* Sample `ch` of frame `i` as a float in [-1, 1]. */
static float sample(const wav *w, size_t i, unsigned ch) {
  const unsigned char *p = w->data + i * w->align + ch * (w->bits / 8);
  switch (w->bits) {
    case 8: return ((int)p[0] - 128) / 128.0f;
    case 16: return (int16_t)le16(p) / 32768.0f;
    case 24: return (int32_t)((uint32_t)p[0] << 8 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 24) / 2147483648.0f;
    default:
      if (w->format == 3) {
        uint32_t u = le32(p);
        float f;
        memcpy(&f, &u, 4);
        return isfinite(f) ? f : 0;
      }
      return (int32_t)le32(p) / 2147483648.0f;
  }
}

/* Output channel `oc` of input frame `i`: a mix-down averages every input channel. */
static float frame_value(const wav *w, size_t i, unsigned oc, unsigned out_channels) {
  if (out_channels == 1 && w->channels > 1) {
    float sum = 0;
    for (unsigned c = 0; c < w->channels; c++) sum += sample(w, i, c);
    return sum / w->channels;
  }
  return sample(w, i, oc < w->channels ? oc : w->channels - 1);
}

static void put16(unsigned char *p, unsigned v) {
  p[0] = v & 255;
  p[1] = (v >> 8) & 255;
}
static void put32(unsigned char *p, uint32_t v) {
  put16(p, v & 0xFFFF);
  put16(p + 2, v >> 16);
}

int main(void) {
  size_t total;
  unsigned char *buf = zs_read_stdin(&total);
  zs_input in;
  zs_split_input(buf, total, &in);
  if (in.len == 0) zs_fail("no audio: send the bytes of a WAV file");
  wav w = {0};
  parse(in.data, in.len, &w);

  double duration = (double)w.frames / w.rate;
  double start = zs_option_number(in.options, "start", 0);
  double end = zs_option_number(in.options, "end", duration);
  double rate = zs_option_number(in.options, "rate", w.rate);
  double channels = zs_option_number(in.options, "channels", w.channels > 2 ? 2 : w.channels);
  if (start >= duration) zs_fail("start (%.3f s) is past the end of the audio (%.3f s)", start, duration);
  if (!(start >= 0) || !(end > start)) zs_fail("start must be at least 0 and end after start (seconds)");
  if (end > duration) end = duration;
  if (!(rate >= 8000 && rate <= 192000) || rate != floor(rate)) zs_fail("rate must be a whole number of Hz from 8000 to 192000");
  if (channels != 1 && channels != 2) zs_fail("channels must be 1 or 2");
  unsigned oc = (unsigned)channels, orate = (unsigned)rate;

  size_t first = (size_t)floor(start * w.rate), last = (size_t)ceil(end * w.rate);
  if (last > w.frames) last = w.frames;
  size_t in_frames = last - first;
  double step = (double)w.rate / orate;
  size_t out_frames = (size_t)floor(in_frames / step);
  double out_bytes = 44.0 + 8 + 4 + (double)out_frames * oc * 2;
  if (out_bytes > MAX_OUTPUT_BYTES)
    zs_fail("the result would be %.1f MiB; the output limit is %u MiB: keep a shorter span or a lower rate", out_bytes / 1048576, MAX_OUTPUT_BYTES >> 20);

  unsigned char *out = malloc((size_t)out_bytes);
  if (out == NULL) zs_fail("out of memory for %zu output frames", out_frames);
  size_t data_bytes = out_frames * oc * 2;
  memcpy(out, "RIFF", 4);
  put32(out + 4, (uint32_t)(out_bytes - 8));
  memcpy(out + 8, "WAVEfmt ", 8);
  put32(out + 16, 16);
  put16(out + 20, 1);
  put16(out + 22, oc);
  put32(out + 24, orate);
  put32(out + 28, orate * oc * 2);
  put16(out + 32, oc * 2);
  put16(out + 34, 16);
  memcpy(out + 36, "data", 4);
  put32(out + 40, (uint32_t)data_bytes);

  /* Windowed sinc (Blackman) with the cut-off at the lower Nyquist frequency: no aliasing when
   * the rate goes down. Same rate: the samples are copied. */
  double cutoff = orate < w.rate ? (double)orate / w.rate : 1.0;
  double radius = TAPS / cutoff;
  unsigned char *o = out + 44;
  for (size_t j = 0; j < out_frames; j++) {
    double pos = first + j * step;
    for (unsigned c = 0; c < oc; c++) {
      double v;
      if (orate == w.rate) {
        v = frame_value(&w, first + j, c, oc);
      } else {
        long lo = (long)ceil(pos - radius), hi = (long)floor(pos + radius);
        if (lo < (long)first) lo = (long)first;
        if (hi >= (long)last) hi = (long)last - 1;
        double acc = 0, norm = 0;
        for (long k = lo; k <= hi; k++) {
          double x = (k - pos) * cutoff;
          double sinc = fabs(x) < 1e-9 ? 1.0 : sin(PI * x) / (PI * x);
          double t = (k - pos) / radius; /* -1..1 */
          double win = 0.42 + 0.5 * cos(PI * t) + 0.08 * cos(2 * PI * t);
          double wt = sinc * win;
          acc += wt * frame_value(&w, (size_t)k, c, oc);
          norm += wt;
        }
        v = norm != 0 ? acc / norm : 0;
      }
      long s = lround(v * 32767.0);
      if (s > 32767) s = 32767;
      if (s < -32768) s = -32768;
      put16(o, (unsigned)(s & 0xFFFF));
      o += 2;
    }
  }
  /* A trailing JUNK chunk (which WAV readers skip) whose bytes are not UTF-8: the runtime returns
   * an agent's stdout as text when it decodes as UTF-8, and a quiet WAV at some rates would. */
  memcpy(o, "JUNK", 4);
  put32(o + 4, 4);
  memcpy(o + 8, "\xff\xfe\xff\xfe", 4);
  zs_write(out, (size_t)out_bytes);
  fflush(stdout);
  return 0;
}
