/* The codec registry: the public sk2_codec_* API over a static table of codecs.
 *
 * This is the one place that looks at frames. It validates what the caller passes (NULLs,
 * pixel formats, the frame limits) once, so every codec behind it can assume a sane shape and
 * concentrate on its bytes. The table is built from SK2_CODEC_LIST in codec_impl.h and never
 * changes at run time, so every function here is safe from any thread without locks. */
#include <stdlib.h>
#include <string.h>

#include "codec/codec_impl.h"
#include "sk2/error.h"

#define SK2_CODEC_ENTRY(id) &sk2_codec_##id,
static const struct sk2_codec *const s_codecs[] = {SK2_CODEC_LIST(SK2_CODEC_ENTRY)};
#undef SK2_CODEC_ENTRY

#define S_CODEC_COUNT (sizeof s_codecs / sizeof s_codecs[0])

size_t sk2_codec_count(void)
{
    return S_CODEC_COUNT;
}

const sk2_codec_t *sk2_codec_at(size_t index)
{
    return index < S_CODEC_COUNT ? s_codecs[index] : NULL;
}

const sk2_codec_t *sk2_codec_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < S_CODEC_COUNT; i++)
        if (strcmp(s_codecs[i]->name, name) == 0)
            return s_codecs[i];
    return NULL;
}

const char *sk2_codec_name(const sk2_codec_t *codec)
{
    return codec ? codec->name : NULL;
}

const char *sk2_codec_description(const sk2_codec_t *codec)
{
    return codec ? codec->description : NULL;
}

bool sk2_codec_is_lossless(const sk2_codec_t *codec)
{
    return codec && codec->is_lossless;
}

bool sk2_codec_supports(const sk2_codec_t *codec, sk2_pixel_format_t format)
{
    /* Formats are small positive numbers; anything else (a cast from the wire) is refused
     * before it becomes a shift count. */
    unsigned number = (unsigned)format;
    return codec && number > 0 && number < 32 && (codec->formats & SK2_CODEC_FORMAT_BIT(number));
}

bool sk2_codec_has_quality(const sk2_codec_t *codec)
{
    return codec && codec->has_quality;
}

struct sk2_codec_options {
    int quality; /* 0 (the codec's default) or 1 .. 100 */
};

sk2_codec_options_t *sk2_codec_options_new(void)
{
    return calloc(1, sizeof(sk2_codec_options_t));
}

void sk2_codec_options_destroy(sk2_codec_options_t **self_p)
{
    if (self_p && *self_p) {
        free(*self_p);
        *self_p = NULL;
    }
}

int sk2_codec_options_set_quality(sk2_codec_options_t *self, int quality)
{
    if (!self || quality < 0 || quality > 100)
        return SK2_EINVAL;
    self->quality = quality;
    return 0;
}

int sk2_codec_options_quality(const sk2_codec_options_t *self)
{
    return self ? self->quality : 0;
}

/* Fills *shape if a codec can be asked about this geometry at all. The frame limits keep
 * every size a codec computes (width * height * bytes per pixel, plus its own overhead) far
 * from overflowing size_t, uint32_t or LZ4's int. */
static bool s_shape_init(const sk2_codec_t *codec, sk2_pixel_format_t format, uint32_t width,
                         uint32_t height, sk2_codec_shape_t *shape)
{
    if (!sk2_codec_supports(codec, format) || width == 0 || height == 0 ||
        width > SK2_FRAME_MAX_WIDTH || height > SK2_FRAME_MAX_HEIGHT)
        return false;
    shape->format = format;
    shape->width = width;
    shape->height = height;
    return true;
}

size_t sk2_codec_encode_bound(const sk2_codec_t *codec, sk2_pixel_format_t format, uint32_t width,
                              uint32_t height)
{
    sk2_codec_shape_t shape;
    if (!s_shape_init(codec, format, width, height, &shape))
        return 0;
    return codec->bound(&shape);
}

int sk2_codec_encode(const sk2_codec_t *codec, const sk2_frame_t *frame, uint8_t *dst,
                     size_t dst_cap, size_t *dst_len)
{
    return sk2_codec_encode_opts(codec, frame, NULL, dst, dst_cap, dst_len);
}

int sk2_codec_encode_opts(const sk2_codec_t *codec, const sk2_frame_t *frame,
                          const sk2_codec_options_t *options, uint8_t *dst, size_t dst_cap,
                          size_t *dst_len)
{
    if (!codec || !frame || !dst_len || (!dst && dst_cap > 0))
        return SK2_EINVAL;
    *dst_len = 0;
    sk2_codec_shape_t shape;
    if (!s_shape_init(codec, sk2_frame_format(frame), sk2_frame_width(frame),
                      sk2_frame_height(frame), &shape))
        return SK2_EUNSUPPORTED;
    /* The codec, not this wrapper, decides whether dst is too small: a buffer below the bound
     * still works whenever the frame compresses well enough, which callers may rely on. */
    sk2_codec_params_t params = {
        .quality = options && options->quality > 0 ? options->quality : SK2_CODEC_DEFAULT_QUALITY,
    };
    int rc = codec->encode(&shape, &params, sk2_frame_cdata(frame), dst, dst_cap, dst_len);
    if (rc != 0)
        *dst_len = 0;
    return rc;
}

int sk2_codec_decode(const sk2_codec_t *codec, const uint8_t *src, size_t src_len,
                     sk2_frame_t *frame)
{
    if (!codec || !frame || (!src && src_len > 0))
        return SK2_EINVAL;
    sk2_codec_shape_t shape;
    if (!s_shape_init(codec, sk2_frame_format(frame), sk2_frame_width(frame),
                      sk2_frame_height(frame), &shape))
        return SK2_EUNSUPPORTED;
    return codec->decode(&shape, src, src_len, sk2_frame_data(frame));
}
