/*
 * ck_numeric.c: half-precision conversions and GGUF Q8_0 (de)quantisation, in plain C.
 */
#include <math.h>
#include <string.h>

#include "ck_internal.h"

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* IEEE half -> float, exactly (subnormals, inf and NaN included). */
float ck_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (man << 13));      /* inf / NaN */
    if (exp != 0) return bits_f32(sign | ((exp + 112) << 23) | (man << 13)); /* normal */
    if (man == 0) return bits_f32(sign);                                     /* zero */
    /* subnormal: man * 2^-24 */
    float v = (float)man * (1.0f / 16777216.0f);
    return (sign ? -v : v);
}

/* float -> IEEE half, round to nearest even. */
uint16_t ck_f32_to_f16(float f) {
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7fffffffu;
    if (a >= 0x7f800000u) return (uint16_t)(sign | 0x7c00 | (a > 0x7f800000u ? 0x200 : 0));
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00);   /* rounds to >= 65520: inf */
    if (a < 0x38800000u) {                                    /* below 2^-14: subnormal half */
        /* value * 2^24 rounded to an integer, nearest even */
        float v = bits_f32(a) * 16777216.0f;
        float r = nearbyintf(v);
        return (uint16_t)(sign | (uint16_t)r);
    }
    uint32_t exp = ((a >> 23) - 112) << 10;
    uint32_t man = (a >> 13) & 0x3ff;
    uint32_t rest = a & 0x1fff;
    uint32_t h = exp | man;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

float ck_bf16_to_f32(uint16_t h) {
    return bits_f32((uint32_t)h << 16);
}

uint16_t ck_f32_to_bf16(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

/* Q8_0: per block of 32, d = max|x| / 127 stored as f16, q = round(x / d). */
void ck_quantize_q8_0(const float *x, void *out, int64_t n) {
    uint8_t *o = (uint8_t *)out;
    for (int64_t b = 0; b < n / 32; b++, x += 32, o += 34) {
        float amax = 0.0f;
        for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[i]));
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        uint16_t dh = ck_f32_to_f16(d);
        memcpy(o, &dh, 2);
        for (int i = 0; i < 32; i++) o[2 + i] = (uint8_t)(int8_t)lroundf(x[i] * id);
    }
}

const char *ck_dtype_name(int32_t dtype) {
    switch (dtype) {
    case CK_F32: return "F32";
    case CK_F16: return "F16";
    case CK_BF16: return "BF16";
    case CK_Q8_0: return "Q8_0";
    default: return "?";
    }
}

/* bytes of one row of `cols` weights; -1 when cols does not fit the dtype */
int64_t ck_dtype_row_bytes(int32_t dtype, int64_t cols) {
    switch (dtype) {
    case CK_F32: return cols * 4;
    case CK_F16:
    case CK_BF16: return cols * 2;
    case CK_Q8_0: return cols % 32 == 0 ? cols / 32 * 34 : -1;
    default: return -1;
    }
}

void ck_row_to_f32(const void *row, int32_t dtype, int64_t cols, float *out) {
    const uint8_t *p = (const uint8_t *)row;
    switch (dtype) {
    case CK_F32:
        memcpy(out, p, (size_t)cols * 4);
        break;
    case CK_F16:
        for (int64_t i = 0; i < cols; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            out[i] = ck_f16_to_f32(h);
        }
        break;
    case CK_BF16:
        for (int64_t i = 0; i < cols; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            out[i] = ck_bf16_to_f32(h);
        }
        break;
    case CK_Q8_0:
        for (int64_t b = 0; b < cols / 32; b++, p += 34) {
            uint16_t dh;
            memcpy(&dh, p, 2);
            float d = ck_f16_to_f32(dh);
            for (int i = 0; i < 32; i++) out[b * 32 + i] = d * (float)(int8_t)p[2 + i];
        }
        break;
    default:
        break;
    }
}
