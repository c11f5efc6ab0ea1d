package org.cocoonjvm.load;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * A line chart as a self-contained SVG document, written by hand so plots need no library and
 * open in any browser. Axes are linear, from zero (or the data's minimum) to a rounded maximum.
 */
public final class SvgChart {
    private static final int W = 720;
    private static final int H = 420;
    private static final int LEFT = 70;
    private static final int RIGHT = 180;
    private static final int TOP = 40;
    private static final int BOTTOM = 50;
    private static final String[] COLOURS = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf", "#7f7f7f"};

    private final String title;
    private final String xLabel;
    private final String yLabel;
    private final List<Series> series = new ArrayList<>();
    private double xMax = Double.NaN;

    /** @param dashed drawn dashed (the direct path, against the gateway's solid line) */
    public record Series(String name, int colour, boolean dashed, boolean markers, double[] xs, double[] ys) {}

    public SvgChart(String title, String xLabel, String yLabel) {
        this.title = title;
        this.xLabel = xLabel;
        this.yLabel = yLabel;
    }

    public SvgChart add(Series s) {
        if (s.xs().length != s.ys().length) {
            throw new IllegalArgumentException("series " + s.name() + ": x and y differ in length");
        }
        series.add(s);
        return this;
    }

    /** Cuts the x axis here (a latency tail would otherwise squeeze the body of a CDF into one pixel). */
    public SvgChart clipX(double max) {
        xMax = max;
        return this;
    }

    public String render() {
        double xTop = Double.isNaN(xMax) ? niceCeil(max(true)) : niceCeil(xMax);
        double yTop = niceCeil(max(false));
        double plotW = W - LEFT - RIGHT;
        double plotH = H - TOP - BOTTOM;
        StringBuilder svg = new StringBuilder();
        svg.append(String.format(Locale.ROOT, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                + "font-family=\"sans-serif\" font-size=\"12\">%n", W, H, W, H));
        svg.append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
        svg.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"22\" font-size=\"15\">%s</text>%n", LEFT, escape(title)));
        for (int i = 0; i <= 5; i++) {
            double fx = i / 5.0;
            double x = LEFT + fx * plotW;
            double y = TOP + plotH - fx * plotH;
            svg.append(String.format(Locale.ROOT, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>%n", x, TOP, x, TOP + plotH));
            svg.append(String.format(Locale.ROOT, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>%n", LEFT, y, LEFT + plotW, y));
            svg.append(String.format(Locale.ROOT, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>%n", x, TOP + plotH + 16, label(fx * xTop)));
            svg.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>%n", LEFT - 6, y + 4, label(fx * yTop)));
        }
        svg.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333\"/>%n",
                LEFT, TOP, plotW, plotH));
        svg.append(String.format(Locale.ROOT, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>%n", LEFT + plotW / 2, H - 12, escape(xLabel)));
        svg.append(String.format(Locale.ROOT, "<text transform=\"translate(16 %.1f) rotate(-90)\" text-anchor=\"middle\">%s</text>%n",
                TOP + plotH / 2, escape(yLabel)));
        for (int s = 0; s < series.size(); s++) {
            Series line = series.get(s);
            String colour = COLOURS[line.colour() % COLOURS.length];
            StringBuilder points = new StringBuilder();
            for (int i = 0; i < line.xs().length; i++) {
                if (line.xs()[i] > xTop) {
                    break;
                }
                points.append(String.format(Locale.ROOT, "%.1f,%.1f ", LEFT + line.xs()[i] / xTop * plotW,
                        TOP + plotH - line.ys()[i] / yTop * plotH));
            }
            svg.append(String.format(Locale.ROOT, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"%s\"/>%n",
                    colour, line.dashed() ? " stroke-dasharray=\"6 4\"" : "", points.toString().strip()));
            if (line.markers()) {
                for (String p : points.toString().strip().split(" ")) {
                    if (!p.isEmpty()) {
                        String[] xy = p.split(",");
                        svg.append(String.format(Locale.ROOT, "<circle cx=\"%s\" cy=\"%s\" r=\"3.5\" fill=\"%s\"/>%n", xy[0], xy[1], colour));
                    }
                }
            }
            double ly = TOP + 12 + s * 18;
            svg.append(String.format(Locale.ROOT, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"%s/>%n",
                    W - RIGHT + 12, ly, W - RIGHT + 36, ly, colour, line.dashed() ? " stroke-dasharray=\"6 4\"" : ""));
            svg.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%.1f\">%s</text>%n", W - RIGHT + 42, ly + 4, escape(line.name())));
        }
        svg.append("</svg>\n");
        return svg.toString();
    }

    private double max(boolean x) {
        double m = 0;
        for (Series s : series) {
            for (double v : x ? s.xs() : s.ys()) {
                m = Math.max(m, v);
            }
        }
        return m;
    }

    /** 1, 2 or 5 times a power of ten, at least {@code v}. */
    private static double niceCeil(double v) {
        if (!(v > 0)) {
            return 1;
        }
        double p = Math.pow(10, Math.floor(Math.log10(v)));
        for (double m : new double[] {1, 2, 5, 10}) {
            if (m * p >= v) {
                return m * p;
            }
        }
        return 10 * p;
    }

    private static String label(double v) {
        return v == Math.rint(v) && Math.abs(v) < 1e9 ? String.valueOf((long) v) : String.format(Locale.ROOT, "%.3g", v);
    }

    private static String escape(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;");
    }
}
