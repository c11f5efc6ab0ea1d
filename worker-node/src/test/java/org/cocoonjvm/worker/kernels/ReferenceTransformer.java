package org.cocoonjvm.worker.kernels;

import org.cocoonjvm.worker.model.ModelConfig;
import org.cocoonjvm.worker.model.RopeScaling;
import org.cocoonjvm.worker.model.TensorKind;

/**
 * The plain forward pass, in double precision, that the native kernels are checked against. It
 * follows Hugging Face transformers' Llama/Qwen2/Qwen3 modelling code top to bottom and keeps no
 * KV cache: each call recomputes the whole sequence, so it has nothing clever to get wrong.
 */
final class ReferenceTransformer {
    /** Weights as doubles, row-major, shaped as {@link ModelConfig#shape}. */
    interface Weights {
        double[] get(TensorKind kind, int layer);
    }

    private final ModelConfig c;
    private final Weights w;

    ReferenceTransformer(ModelConfig config, Weights weights) {
        this.c = config;
        this.w = weights;
    }

    /** Logits after the last token: [vocab]. */
    double[] logits(int[] tokens) {
        int n = tokens.length;
        double[][] x = new double[n][];                              // [n][hidden] residual stream
        double[] embd = w.get(TensorKind.TOKEN_EMBD, 0);
        for (int t = 0; t < n; t++) {
            x[t] = slice(embd, tokens[t], c.hidden());
        }
        for (int l = 0; l < c.layers(); l++) {
            double[][] h = new double[n][];
            for (int t = 0; t < n; t++) {
                h[t] = rmsNorm(x[t], w.get(TensorKind.ATTN_NORM, l));
            }
            double[][] attn = attention(h, l);
            for (int t = 0; t < n; t++) {
                add(x[t], matVec(w.get(TensorKind.WO, l), attn[t], c.hidden()));
                double[] f = rmsNorm(x[t], w.get(TensorKind.FFN_NORM, l));
                double[] gate = matVec(w.get(TensorKind.W_GATE, l), f, c.ffnHidden());
                double[] up = matVec(w.get(TensorKind.W_UP, l), f, c.ffnHidden());
                for (int i = 0; i < gate.length; i++) {
                    gate[i] = gate[i] / (1 + Math.exp(-gate[i])) * up[i];   // SwiGLU: silu(gate) * up
                }
                add(x[t], matVec(w.get(TensorKind.W_DOWN, l), gate, c.hidden()));
            }
        }
        double[] last = rmsNorm(x[n - 1], w.get(TensorKind.OUTPUT_NORM, 0));
        double[] out = c.tiedEmbeddings() ? embd : w.get(TensorKind.OUTPUT, 0);
        return matVec(out, last, c.vocab());
    }

    /** Causal grouped-query attention for every position: [n][heads*head_dim]. */
    private double[][] attention(double[][] h, int l) {
        int n = h.length;
        int hd = c.headDim();
        double[][] q = new double[n][];
        double[][] k = new double[n][];
        double[][] v = new double[n][];
        for (int t = 0; t < n; t++) {
            q[t] = project(TensorKind.WQ, TensorKind.BQ, l, h[t], c.qDim());
            k[t] = project(TensorKind.WK, TensorKind.BK, l, h[t], c.kvDim());
            v[t] = project(TensorKind.WV, TensorKind.BV, l, h[t], c.kvDim());
            if (c.qkNorm()) {
                normEachHead(q[t], w.get(TensorKind.Q_NORM, l));
                normEachHead(k[t], w.get(TensorKind.K_NORM, l));
            }
            rope(q[t], t);
            rope(k[t], t);
        }
        double[][] out = new double[n][c.qDim()];
        int group = c.heads() / c.kvHeads();
        for (int t = 0; t < n; t++) {
            for (int head = 0; head < c.heads(); head++) {
                int kvHead = head / group;
                double[] scores = new double[t + 1];
                double max = Double.NEGATIVE_INFINITY;
                for (int s = 0; s <= t; s++) {
                    double dot = 0;
                    for (int i = 0; i < hd; i++) {
                        dot += q[t][head * hd + i] * k[s][kvHead * hd + i];
                    }
                    scores[s] = dot / Math.sqrt(hd);
                    max = Math.max(max, scores[s]);
                }
                double sum = 0;
                for (int s = 0; s <= t; s++) {
                    scores[s] = Math.exp(scores[s] - max);
                    sum += scores[s];
                }
                for (int s = 0; s <= t; s++) {
                    for (int i = 0; i < hd; i++) {
                        out[t][head * hd + i] += scores[s] / sum * v[s][kvHead * hd + i];
                    }
                }
            }
        }
        return out;
    }

    private double[] project(TensorKind weight, TensorKind bias, int l, double[] x, int rows) {
        double[] y = matVec(w.get(weight, l), x, rows);
        if (c.attentionBias()) {
            add(y, w.get(bias, l));
        }
        return y;
    }

    private void normEachHead(double[] x, double[] weight) {
        int hd = c.headDim();
        for (int start = 0; start < x.length; start += hd) {
            double[] head = rmsNorm(slice(x, start / hd, hd), weight);
            System.arraycopy(head, 0, x, start, hd);
        }
    }

    /** HF's rotate_half RoPE: element i pairs with i + head_dim/2 within each head. */
    private void rope(double[] x, int position) {
        int hd = c.headDim();
        int half = hd / 2;
        for (int i = 0; i < half; i++) {
            double angle = position * inverseFrequency(i);
            double cos = Math.cos(angle);
            double sin = Math.sin(angle);
            for (int start = 0; start < x.length; start += hd) {
                double a = x[start + i];
                double b = x[start + i + half];
                x[start + i] = a * cos - b * sin;
                x[start + i + half] = b * cos + a * sin;
            }
        }
    }

    double inverseFrequency(int i) {
        double freq = 1 / Math.pow(c.ropeTheta(), 2.0 * i / c.headDim());
        RopeScaling s = c.ropeScaling();
        return switch (s.type()) {
            case NONE -> freq;
            case LINEAR -> freq / s.factor();
            case LLAMA3 -> {
                double lowWavelen = s.originalMaxContext() / s.lowFreqFactor();
                double highWavelen = s.originalMaxContext() / s.highFreqFactor();
                double wavelen = 2 * Math.PI / freq;
                if (wavelen < highWavelen) {
                    yield freq;
                }
                if (wavelen > lowWavelen) {
                    yield freq / s.factor();
                }
                double smooth = (s.originalMaxContext() / wavelen - s.lowFreqFactor()) / (s.highFreqFactor() - s.lowFreqFactor());
                yield (1 - smooth) * freq / s.factor() + smooth * freq;
            }
        };
    }

    private double[] rmsNorm(double[] x, double[] weight) {
        double ss = 0;
        for (double v : x) {
            ss += v * v;
        }
        double scale = 1 / Math.sqrt(ss / x.length + c.rmsEps());
        double[] y = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            y[i] = x[i] * scale * weight[i];
        }
        return y;
    }

    /** y = W x for row-major W of [rows][x.length]. */
    private static double[] matVec(double[] weight, double[] x, int rows) {
        double[] y = new double[rows];
        for (int r = 0; r < rows; r++) {
            double sum = 0;
            int base = r * x.length;
            for (int i = 0; i < x.length; i++) {
                sum += weight[base + i] * x[i];
            }
            y[r] = sum;
        }
        return y;
    }

    private static double[] slice(double[] flat, int row, int width) {
        double[] out = new double[width];
        System.arraycopy(flat, row * width, out, 0, width);
        return out;
    }

    private static void add(double[] into, double[] x) {
        for (int i = 0; i < into.length; i++) {
            into[i] += x[i];
        }
    }
}
